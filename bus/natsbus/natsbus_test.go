package natsbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/bus/bustest"
	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/internal/natstest"
	"github.com/imgpipe/imgpipe/model"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const patience = 10 * time.Second

// testLog is quiet unless -v: the suite makes handlers panic on purpose.
func testLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig keeps no staged blobs in memory: the suite's reads reach the
// server, after restarts and failovers too, which is what they are about.
// TestConformanceWithBlobCache runs the suite with the cache.
func testConfig(prefix string) natsbus.Config {
	cfg := natsbus.DefaultConfig()
	cfg.Prefix = prefix
	cfg.Retry = bustest.Retry
	cfg.StageCacheBytes = 0
	return cfg
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	t.Cleanup(cancel)
	return ctx
}

// listeningServer starts a server on a free port, and returns it, a bus
// configuration that reaches it, and a function that starts it again on
// that port and store once it has been shut down.
func listeningServer(t *testing.T, prefix string) (*server.Server, natsbus.Config, func() *server.Server) {
	t.Helper()
	dir := t.TempDir()
	ns := startServer(t, dir, "127.0.0.1:0")
	u, err := url.Parse(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(prefix)
	cfg.URL = u.String()
	return ns, cfg, func() *server.Server { return startServer(t, dir, u.Host) }
}

// startServer starts an embedded server, shut down when the test ends
// (a second Shutdown is harmless).
func startServer(t *testing.T, dir, listen string) *server.Server {
	t.Helper()
	ns, err := natsbus.StartEmbeddedWith(natsbus.EmbeddedOptions{Dir: dir, Listen: listen}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

func connect(t *testing.T, cfg natsbus.Config, ns *server.Server) *natsbus.Bus {
	t.Helper()
	b, err := natsbus.Connect(ctxFor(t), cfg, ns, "test-"+t.Name(), testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// TestConformance runs the suite on one in-process server, each bus
// isolated by its own prefix.
func TestConformance(t *testing.T) { conformance(t, 0) }

// TestConformanceWithBlobCache runs the suite with staged blobs kept in
// memory, as imgpipe dev does (a smaller cache: blobs over 512 KiB are
// read from the server).
func TestConformanceWithBlobCache(t *testing.T) { conformance(t, 4<<20) }

func conformance(t *testing.T, cacheBytes int64) {
	ns := startServer(t, t.TempDir(), "")
	var n atomic.Int32
	bustest.Run(t, func(t *testing.T) bus.Bus {
		cfg := testConfig(fmt.Sprintf("c%d", n.Add(1)))
		cfg.AckWait = bustest.HungAfter
		cfg.StageCacheBytes = cacheBytes
		return connect(t, cfg, ns)
	})
}

func recvData(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(patience):
		t.Fatal("timed out waiting for a delivery")
		return ""
	}
}

func collect(ch chan<- string) bus.Handler {
	return func(_ context.Context, d bus.Delivery) error { ch <- string(d.Data()); return nil }
}

// TestRestartKeepsState: streams, status records and staged blobs survive
// a restart of the embedded server on the same directory.
func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("restart")
	ctx := ctxFor(t)
	blob := make([]byte, 300<<10)
	for i := range blob {
		blob[i] = byte(i * 7)
	}

	ns := startServer(t, dir, "")
	b := connect(t, cfg, ns)
	if err := b.Publish(ctx, bus.Message{Queue: bus.Transform, Subject: "abc", ID: "abc", Data: []byte("work")}); err != nil {
		t.Fatal(err)
	}
	if err := b.Stage().Put(ctx, model.OriginalKey("abc"), blob); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Status().Create(ctx, &model.Image{ID: "abc", Status: model.StatusQueued, Spec: "w=1"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()

	b = connect(t, cfg, startServer(t, dir, ""))
	img, err := b.Status().Get(ctx, "abc")
	if err != nil || img.Spec != "w=1" {
		t.Fatalf("status after restart: %+v, %v", img, err)
	}
	back, err := b.Stage().Get(ctx, model.OriginalKey("abc"))
	if err != nil || len(back) != len(blob) {
		t.Fatalf("stage after restart: %d bytes, %v", len(back), err)
	}
	got := make(chan string, 4)
	if _, err := b.Consume(ctx, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform"}, collect(got)); err != nil {
		t.Fatal(err)
	}
	if s := recvData(t, got); s != "work" {
		t.Fatalf("queued message after restart: %q", s)
	}
}

// TestServerDown: with the server gone, Publish and Ping fail fast with
// ErrUnavailable; once it is back, the bus reconnects by itself and its
// consumers resume.
func TestServerDown(t *testing.T) {
	ns, cfg, startAgain := listeningServer(t, "down")
	b := connect(t, cfg, nil)
	msg := bus.Message{Queue: bus.Activity, Subject: "abc", Data: []byte("event")}
	if err := b.Publish(ctxFor(t), msg); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	if _, err := b.Consume(ctxFor(t), bus.ConsumerConfig{Queue: bus.Save, Durable: "save"}, collect(got)); err != nil {
		t.Fatal(err)
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	const timeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	start := time.Now()
	err := b.Publish(ctx, msg)
	if !errors.Is(err, bus.ErrUnavailable) {
		t.Fatalf("publish with the server down: %v, want ErrUnavailable", err)
	}
	// The drop is seen at once: the publish must not wait for its ctx.
	if took := time.Since(start); took > timeout/2 {
		t.Fatalf("publish took %s to fail", took)
	}
	if err := b.Ping(ctxFor(t)); !errors.Is(err, bus.ErrUnavailable) {
		t.Fatalf("ping with the server down: %v, want ErrUnavailable", err)
	}

	ns2 := startAgain()
	deadline := time.Now().Add(patience)
	for b.Ping(ctxFor(t)) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no reconnect after the server came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := b.Publish(ctxFor(t), msg); err != nil {
		t.Fatalf("publish after reconnect: %v", err)
	}
	// The consumer started before the outage resumes on its own.
	if err := b.Publish(ctxFor(t), bus.Message{Queue: bus.Save, Subject: "abc", Data: []byte("work")}); err != nil {
		t.Fatal(err)
	}
	if s := recvData(t, got); s != "work" {
		t.Fatalf("consumer after reconnect got %q", s)
	}

	// Close must not wait on a server that is gone.
	ns2.Shutdown()
	ns2.WaitForShutdown()
	start = time.Now()
	if err := b.Close(); err != nil {
		t.Errorf("close with the server down: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("close with the server down took %s", took)
	}
}

// TestRestartUnderBacklog: a consumer whose workers are busy and whose
// prefetched messages wait for them holds no more than it should while
// its server restarts, and goes on at once after. Both ways nats.go reads
// ahead failed that. Its Messages iterator, which the consumers used,
// forgot on a reconnect what its full buffer held and pulled a whole batch
// again: the client dropped what did not fit (a slow consumer), to come
// again only after the ack deadline. Its Consume, with a callback waiting
// for a free worker, took that wait for missed heartbeats and pulled
// another batch every few seconds.
func TestRestartUnderBacklog(t *testing.T) {
	ns, cfg, startAgain := listeningServer(t, "backlog")
	log, logged := captureLog()
	b, err := natsbus.Connect(ctxFor(t), cfg, nil, "backlog", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })

	const n, workers = 200, 4
	ctx := ctxFor(t)
	for i := range n {
		if err := b.Publish(ctx, bus.Message{Queue: bus.Save, Subject: fmt.Sprint("m", i), ID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	handled := map[string]bool{}
	all, hold, started := make(chan struct{}), make(chan struct{}), make(chan struct{}, 2*n)
	// Longer than the test waits: what the restart drops comes again only
	// after it, and the test sees the stall.
	const ackWait = 30 * time.Second
	_, err = b.Consume(ctx, bus.ConsumerConfig{Queue: bus.Save, Durable: "save", Workers: workers, AckWait: ackWait},
		func(_ context.Context, d bus.Delivery) error {
			started <- struct{}{}
			<-hold
			mu.Lock()
			defer mu.Unlock()
			if handled[d.Subject()] = true; len(handled) == n {
				close(all)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for range workers {
		select {
		case <-started:
		case <-time.After(patience):
			t.Fatal("the workers did not start")
		}
	}
	time.Sleep(500 * time.Millisecond) // what is fetched ahead arrives
	ns.Shutdown()
	ns.WaitForShutdown()
	ns = startAgain()

	// Held through two asks' time after the restart: every message the
	// process holds, or has asked for, is one the consumer counts as
	// pending its ack.
	js := rawJS(t, ns)
	for end := time.Now().Add(2*natsbus.PullExpiry + time.Second); time.Now().Before(end); {
		time.Sleep(500 * time.Millisecond)
		cons, err := js.Consumer(ctxFor(t), "BACKLOG_SAVE", "save")
		if err != nil {
			t.Fatal(err)
		}
		if info, err := cons.Info(ctxFor(t)); err == nil && info.NumAckPending > 2*workers {
			t.Errorf("the process holds %d messages, want at most 2×%d workers", info.NumAckPending, workers)
			break
		}
	}
	released := time.Now()
	close(hold)
	select {
	case <-all:
		t.Logf("every message handled %s after the workers were released", time.Since(released).Round(time.Millisecond))
	case <-time.After(ackWait * 2 / 3):
		mu.Lock()
		t.Errorf("%d of %d messages handled %s after the workers were released", len(handled), n, ackWait*2/3)
		mu.Unlock()
	}
	if strings.Contains(logged(), "slow consumer") {
		t.Errorf("messages dropped by the client:\n%s", logged())
	}
}

// TestWatchThroughRestart: a watch (what /v1/events reads) that is behind
// when its server restarts goes on after it with every message, in order,
// none twice: its ordered consumer reads through nats.go's Messages
// iterator, whose buffer can overflow on a reconnect, and must recreate
// itself at the gap.
func TestWatchThroughRestart(t *testing.T) {
	ns, cfg, startAgain := listeningServer(t, "watchrs")
	b := connect(t, cfg, nil)
	var mu sync.Mutex
	var seqs []uint64
	ctx, cancel := context.WithCancel(t.Context())
	watched := make(chan error, 1)
	go func() {
		watched <- b.Watch(ctx, bus.Activity, 0, func(seq uint64, _ []byte) {
			time.Sleep(time.Millisecond) // a slow client: the watch falls behind
			mu.Lock()
			defer mu.Unlock()
			seqs = append(seqs, seq)
		})
	}()
	defer func() {
		cancel()
		if err := <-watched; err != nil {
			t.Errorf("watch: %v", err)
		}
	}()
	time.Sleep(200 * time.Millisecond) // the watch has started: it sees what follows
	const n = 2000
	for i := range n {
		if err := b.Publish(ctxFor(t), bus.Message{Queue: bus.Activity, Subject: fmt.Sprint("e", i), Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	seen := func() int { mu.Lock(); defer mu.Unlock(); return len(seqs) }
	for deadline := time.Now().Add(patience); seen() < n/10; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages watched before the restart", seen(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	startAgain()
	for deadline := time.Now().Add(3 * patience); seen() < n && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, seq := range seqs {
		if seq != seqs[0]+uint64(i) {
			t.Fatalf("message %d watched is sequence %d, want %d: a gap or a repeat", i, seq, seqs[0]+uint64(i))
		}
	}
	if len(seqs) != n {
		t.Fatalf("%d of %d messages watched", len(seqs), n)
	}
}

// TestConcurrentConnect: processes starting together all set up the same
// streams and buckets without failing.
func TestConcurrentConnect(t *testing.T) {
	ns := startServer(t, t.TempDir(), "")
	cfg := testConfig("together")
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			b, err := natsbus.Connect(ctxFor(t), cfg, ns, fmt.Sprintf("p%d", i), testLog())
			if err == nil {
				err = b.Publish(ctxFor(t), bus.Message{Queue: bus.Save, Subject: "x", Data: []byte("y")})
				err = errors.Join(err, b.Close())
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("connect %d: %v", i, err)
		}
	}
}

// TestDrainHandsBackPrefetched: messages fetched but not started when
// Drain begins reach another consumer at once, not after AckWait (60s),
// while the handlers in flight finish.
func TestDrainHandsBackPrefetched(t *testing.T) {
	b := connect(t, testConfig("handback"), startServer(t, t.TempDir(), ""))
	ctx := ctxFor(t)
	entered := make(chan string, 8)
	release := make(chan struct{})
	c, err := b.Consume(ctx, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 2},
		func(_ context.Context, d bus.Delivery) error {
			if strings.HasPrefix(d.Subject(), "quick") {
				return nil // lets a worker come back for more: the next pull fills the buffer
			}
			entered <- d.Subject()
			<-release
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	for _, s := range []string{"m0", "quick", "m1", "m2", "m3", "m4", "m5"} {
		if err := b.Publish(ctx, bus.Message{Queue: bus.Transform, Subject: s}); err != nil {
			t.Fatal(err)
		}
	}
	busy := map[string]bool{recvData(t, entered): true, recvData(t, entered): true}
	drained := make(chan error, 1)
	go func() { drained <- c.Drain(ctx) }()

	got := make(chan string, 8)
	if _, err := b.Consume(ctx, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 2},
		func(_ context.Context, d bus.Delivery) error { got <- d.Subject(); return nil }); err != nil {
		t.Fatal(err)
	}
	for range n - len(busy) {
		if s := recvData(t, got); busy[s] || strings.HasPrefix(s, "quick") {
			t.Fatalf("%s handed out again", s)
		}
	}
	close(release)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if len(entered) != 0 {
		t.Fatalf("draining consumer started %q", <-entered)
	}
}

// TestDrainIdleNoPrefetch: the asks of idle NoPrefetch workers end when
// Drain begins; it does not wait for them to expire (pullExpiry, 5 s), and
// a message published after it reaches the next consumer at once, not
// after AckWait (taken by an ask nobody answers any more).
func TestDrainIdleNoPrefetch(t *testing.T) {
	ns := startServer(t, t.TempDir(), "")
	b := connect(t, testConfig("idle"), ns)
	ctx := ctxFor(t)
	cfg := bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 4, NoPrefetch: true}
	c, err := b.Consume(ctx, cfg, func(context.Context, bus.Delivery) error {
		t.Error("the idle consumer got a delivery")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every worker's ask is waiting on the server.
	js := natstest.JetStream(t, "", nats.InProcessServer(ns))
	for deadline := time.Now().Add(10 * time.Second); ; {
		cons, err := js.Consumer(ctx, "IDLE_TRANSFORM", "transform")
		if err == nil {
			if info, err := cons.Info(ctx); err == nil && info.NumWaiting == cfg.Workers {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %d workers' asks are not all waiting on the server", cfg.Workers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	if err := c.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("drain took %s: it waited for the asks to expire", took)
	}
	got := make(chan string, 1)
	if _, err := b.Consume(ctx, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1},
		func(_ context.Context, d bus.Delivery) error { got <- d.Subject(); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, bus.Message{Queue: bus.Transform, Subject: "after"}); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "after" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(natsbus.PullExpiry / 2):
		t.Fatal("the message went to an ask of the drained consumer")
	}
}

// TestDrainHandsBackInFlightNoPrefetch: a message the server sends to an
// idle NoPrefetch worker's ask just as Drain begins is handled or handed
// back, never left on the way until AckWait (2 minutes): published and
// drained at once, again and again, each reaches the draining consumer's
// handler or, at once, the next consumer. One that comes to the next
// consumer as its second delivery was on its way to the drained one.
func TestDrainHandsBackInFlightNoPrefetch(t *testing.T) {
	ns := startServer(t, t.TempDir(), "")
	b := connect(t, testConfig("inflight"), ns)
	ctx := ctxFor(t)
	js := natstest.JetStream(t, "", nats.InProcessServer(ns))
	got := make(chan string, 64)
	handler := func(_ context.Context, d bus.Delivery) error { got <- d.Subject(); return nil }
	second := make(chan bool, 1)
	handedBack, inFlight := 0, 0
	for i := range 30 {
		cfg := bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 2, NoPrefetch: true}
		c, err := b.Consume(ctx, cfg, handler)
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			cons, err := js.Consumer(ctx, "INFLIGHT_TRANSFORM", "transform")
			if err == nil {
				if info, err := cons.Info(ctx); err == nil && info.NumWaiting >= cfg.Workers {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("the workers' asks are not waiting on the server")
			}
		}
		want := fmt.Sprintf("m%d", i)
		if err := b.Publish(ctx, bus.Message{Queue: bus.Transform, Subject: want}); err != nil {
			t.Fatal(err)
		}
		if err := c.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("got %q, want %q", s, want)
			}
			continue // handled before the drain
		default:
		}
		next, err := b.Consume(ctx, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1},
			func(ctx context.Context, d bus.Delivery) error {
				second <- d.Attempt() == 2
				return handler(ctx, d)
			})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("got %q, want %q", s, want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("round %d: %s was lost on its way to the drained consumer", i, want)
		}
		handedBack++
		if <-second {
			inFlight++
		}
		if err := next.Drain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Every round of the old code (nats.go's Next) lost its message.
	t.Logf("of 30: %d handed on, %d of them on their way to the drained consumer; the rest handled before the drain", handedBack, inFlight)
	if inFlight == 0 {
		t.Fatal("no message was on its way at a drain: the test tested nothing")
	}
}

// TestDrainDeadlineCancelsHandlers: handlers still running near Drain's
// deadline get their context cancelled before it (hard shutdown). One that
// returns then hands its message back while the connection is open: it is
// delivered again after its backoff, not the ack wait, and Drain reports
// a clean drain. One that outlives the deadline makes Drain report it.
func TestDrainDeadlineCancelsHandlers(t *testing.T) {
	for _, stuck := range []bool{false, true} {
		t.Run(map[bool]string{false: "handed back", true: "stuck"}[stuck], func(t *testing.T) {
			cfg := testConfig("hard")
			cfg.AckWait = time.Minute // a redelivery by timeout would fail the test
			b := connect(t, cfg, startServer(t, t.TempDir(), ""))
			entered := make(chan struct{})
			cancelled := make(chan struct{})
			release := make(chan struct{})
			defer close(release)
			c, err := b.Consume(ctxFor(t), bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform"},
				func(ctx context.Context, _ bus.Delivery) error {
					close(entered)
					<-ctx.Done()
					close(cancelled)
					if stuck {
						<-release
					}
					return ctx.Err()
				})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(ctxFor(t), bus.Message{Queue: bus.Transform, Subject: "abc"}); err != nil {
				t.Fatal(err)
			}
			<-entered
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			start := time.Now()
			err = c.Drain(ctx)
			select {
			case <-cancelled:
			default:
				t.Fatal("handler context not cancelled")
			}
			if stuck {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("drain with a handler past the deadline: %v, want deadline exceeded", err)
				}
				return
			}
			if err != nil || time.Since(start) >= time.Second {
				t.Fatalf("drain: %v after %s, want a clean drain before the deadline", err, time.Since(start))
			}
			again := make(chan int, 1)
			c2, err := b.Consume(ctxFor(t), bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform"},
				func(_ context.Context, d bus.Delivery) error {
					select {
					case again <- d.Attempt():
					default:
					}
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Drain(context.Background())
			select {
			case n := <-again:
				if n != 2 {
					t.Errorf("delivered again as attempt %d, want 2", n)
				}
			case <-time.After(cfg.AckWait / 2):
				t.Fatal("the handed-back message did not come again before the ack wait")
			}
		})
	}
}

// TestConsumerRecreated: a durable deleted under a running Consume (by an
// operator, say) is recreated and delivery resumes, whether or not a pull
// request was waiting on the server when it went.
func TestConsumerRecreated(t *testing.T) {
	t.Cleanup(natsbus.SetConsumerCheckEvery(50 * time.Millisecond))
	ns := startServer(t, t.TempDir(), "")
	b := connect(t, testConfig("recreate"), ns)
	ctx := ctxFor(t)
	got := make(chan string, 4)
	if _, err := b.Consume(ctx, bus.ConsumerConfig{Queue: bus.Save, Durable: "save"}, collect(got)); err != nil {
		t.Fatal(err)
	}
	deleteConsumer(t, ns, "RECREATE_SAVE", "save")
	if err := b.Publish(ctx, bus.Message{Queue: bus.Save, Subject: "abc", Data: []byte("work")}); err != nil {
		t.Fatal(err)
	}
	if s := recvData(t, got); s != "work" {
		t.Fatalf("got %q", s)
	}
}

// TestConsumerRecreatedNoPull: the consumer is deleted while its only
// worker is busy, so no pull request waits on the server to be told; the
// existence check notices and delivery resumes.
func TestConsumerRecreatedNoPull(t *testing.T) {
	t.Cleanup(natsbus.SetConsumerCheckEvery(50 * time.Millisecond))
	ns := startServer(t, t.TempDir(), "")
	b := connect(t, testConfig("nopull"), ns)
	ctx := ctxFor(t)
	got := make(chan string, 4)
	release := make(chan struct{})
	if _, err := b.Consume(ctx, bus.ConsumerConfig{Queue: bus.Save, Durable: "save", Workers: 1},
		func(_ context.Context, d bus.Delivery) error {
			got <- string(d.Data())
			<-release
			return nil
		}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, bus.Message{Queue: bus.Save, Subject: "a", Data: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	if s := recvData(t, got); s != "first" {
		t.Fatalf("got %q", s)
	}
	deleteConsumer(t, ns, "NOPULL_SAVE", "save")
	close(release)
	if err := b.Publish(ctx, bus.Message{Queue: bus.Save, Subject: "b", Data: []byte("second")}); err != nil {
		t.Fatal(err)
	}
	// "first" comes again: its ack went to the deleted consumer.
	seen := map[string]bool{}
	for !seen["second"] {
		seen[recvData(t, got)] = true
	}
}

// rawJS is a plain JetStream client of ns, outside the bus, closed when
// the test ends: the operator's or a dead process's view.
func rawJS(t *testing.T, ns *server.Server) jetstream.JetStream {
	t.Helper()
	return natstest.JetStream(t, "", nats.InProcessServer(ns))
}

func deleteConsumer(t *testing.T, ns *server.Server, stream, name string) {
	t.Helper()
	js := rawJS(t, ns)
	if err := js.DeleteConsumer(ctxFor(t), stream, name); err != nil {
		t.Fatal(err)
	}
}

func TestWatchWorkQueueRefused(t *testing.T) {
	b := connect(t, testConfig("watchwq"), startServer(t, t.TempDir(), ""))
	if err := b.Watch(ctxFor(t), bus.Transform, 0, func(uint64, []byte) {}); err == nil {
		t.Fatal("watch on a work queue succeeded")
	}
}

// TestInvalidInput: malformed subjects, keys and ids are refused up front,
// and not reported as the bus being unavailable.
func TestInvalidInput(t *testing.T) {
	b := connect(t, testConfig("invalid"), startServer(t, t.TempDir(), ""))
	ctx := ctxFor(t)
	errs := map[string]error{
		"empty subject":    b.Publish(ctx, bus.Message{Queue: bus.Transform}),
		"wildcard subject": b.Publish(ctx, bus.Message{Queue: bus.Transform, Subject: "a.*"}),
		"unknown queue":    b.Publish(ctx, bus.Message{Queue: "nope", Subject: "a"}),
		"empty stage key":  b.Stage().Put(ctx, "", nil),
		"upper-case id":    b.Status().Put(ctx, &model.Image{ID: "ABC"}),
	}
	_, err := b.Status().Get(ctx, "a/b")
	errs["id with slash"] = err
	_, err = b.Consume(ctx, bus.ConsumerConfig{Queue: bus.Save, Durable: "a.b"}, collect(nil))
	errs["dotted durable"] = err
	for name, err := range errs {
		if err == nil || errors.Is(err, bus.ErrUnavailable) || errors.Is(err, bus.ErrNotFound) {
			t.Errorf("%s: %v, want a validation error", name, err)
		}
	}
}

// TestClosed: after Close, calls fail with ErrUnavailable.
func TestClosed(t *testing.T) {
	b := connect(t, testConfig("closed"), startServer(t, t.TempDir(), ""))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	if err := b.Publish(ctx, bus.Message{Queue: bus.Save, Subject: "a"}); !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("publish: %v", err)
	}
	if _, err := b.PublishAsync(bus.Message{Queue: bus.Activity, Subject: "a"}); !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("publish async: %v", err)
	}
	if err := b.Ping(ctx); !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("ping: %v", err)
	}
	if _, err := b.Status().Get(ctx, "abc"); !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("status get: %v", err)
	}
	if _, err := b.Stage().Get(ctx, "originals/abc"); !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("stage get: %v", err)
	}
	if _, err := b.Consume(ctx, bus.ConsumerConfig{Queue: bus.Save, Durable: "d"}, collect(nil)); !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("consume: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := natsbus.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := map[string]func(*natsbus.Config){
		"replicas 0":        func(c *natsbus.Config) { c.Replicas = 0 },
		"replicas 6":        func(c *natsbus.Config) { c.Replicas = 6 },
		"negative ttl":      func(c *natsbus.Config) { c.StatusTTL = -1 },
		"negative age":      func(c *natsbus.Config) { c.ActivityMaxAge = -1 },
		"max deliver 0":     func(c *natsbus.Config) { c.Retry.MaxDeliver = 0 },
		"negative backoff":  func(c *natsbus.Config) { c.Retry.Backoff = []time.Duration{-1} },
		"ack wait 0":        func(c *natsbus.Config) { c.AckWait = 0 },
		"max ack pending":   func(c *natsbus.Config) { c.MaxAckPending = -1 },
		"async max pending": func(c *natsbus.Config) { c.AsyncMaxPending = 0 },
		"empty prefix":      func(c *natsbus.Config) { c.Prefix = "" },
		"upper-case prefix": func(c *natsbus.Config) { c.Prefix = "Img" },
		"dotted prefix":     func(c *natsbus.Config) { c.Prefix = "a.b" },
	}
	for name, mutate := range bad {
		c := natsbus.DefaultConfig()
		mutate(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestConnectSaysWhy: a setup that times out without ever reaching a
// server names the dial error (it said only "context deadline exceeded"),
// and replicas a single server cannot hold are refused at once, marked
// as a misconfiguration, instead of being waited on.
func TestConnectSaysWhy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := "nats://" + l.Addr().String()
	l.Close() // nothing listens there now: connections are refused
	cfg := testConfig("why")
	cfg.URL = nobody
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	_, err = natsbus.Connect(ctx, cfg, nil, "test", testLog())
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !errors.Is(err, bus.ErrUnavailable) {
		t.Fatalf("connect to a closed port: %v, want unavailable, saying the connection was refused", err)
	}

	ns := startServer(t, t.TempDir(), "127.0.0.1:0")
	cfg.URL, cfg.Replicas = ns.ClientURL(), 3
	start := time.Now()
	_, err = natsbus.Connect(ctxFor(t), cfg, nil, "test", testLog())
	if !errors.Is(err, natsbus.ErrMisconfigured) || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("3 replicas on a single server: %v, want ErrMisconfigured", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refused after %s, want at once", took)
	}
}

// TestDeleteVersionLeavesNoChunk: deleting a listed blob removes its
// further chunks too, not only the head that names them.
func TestDeleteVersionLeavesNoChunk(t *testing.T) {
	ns := startServer(t, t.TempDir(), "")
	b := connect(t, testConfig("sweepchunks"), ns)
	key := model.OriginalKey("chunky")
	if err := b.Stage().Put(ctxFor(t), key, make([]byte, 3<<20)); err != nil {
		t.Fatal(err)
	}
	// A later write, so that the big one is older than the stage's latest.
	if err := b.Stage().Put(ctxFor(t), model.OriginalKey("later"), []byte("later")); err != nil {
		t.Fatal(err)
	}
	var version string
	if err := b.Stage().Staged(ctxFor(t), 0, func(blob bus.StagedBlob) error {
		if blob.Key == key {
			version = blob.Version
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	messages := func() uint64 {
		s, err := rawJS(t, ns).Stream(ctxFor(t), "SWEEPCHUNKS_STAGE")
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Msgs
	}
	if n := messages(); n < 7 {
		t.Fatalf("a 3 MiB blob and a small one staged in %d messages, want a head and chunks, and a head", n)
	}
	if deleted, err := b.Stage().DeleteVersion(ctxFor(t), key, version); !deleted || err != nil {
		t.Fatalf("delete version %q: %v, %v", version, deleted, err)
	}
	if n := messages(); n != 1 {
		t.Errorf("%d messages left in the stage, want the later blob's head alone", n)
	}
}

// TestCredentialsNotLogged: a token given as the URL's user (the client's
// own redaction hides only a password) stays out of the log.
func TestCredentialsNotLogged(t *testing.T) {
	ns := startServer(t, t.TempDir(), "127.0.0.1:0")
	u, err := url.Parse(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	log, logged := captureLog()
	for _, user := range []*url.URL{{User: url.User("s3cr3t-token")}, {User: url.UserPassword("alice", "s3cr3t-pass")}} {
		cfg := testConfig("creds")
		u.User = user.User
		cfg.URL = u.String()
		b, err := natsbus.Connect(ctxFor(t), cfg, nil, "creds", log)
		if err != nil {
			t.Fatal(err)
		}
		_ = b.Close()
	}
	if !strings.Contains(logged(), "connected") {
		t.Fatalf("no connection logged: %s", logged())
	}
	if strings.Contains(logged(), "s3cr3t") {
		t.Fatalf("credentials in the log: %s", logged())
	}
}

// captureLog returns a logger at every level, and a function that reads
// what it has written so far.
func captureLog() (*slog.Logger, func() string) {
	var mu sync.Mutex
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	return log, func() string {
		mu.Lock()
		defer mu.Unlock()
		return logged.String()
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
