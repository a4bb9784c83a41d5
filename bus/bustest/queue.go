package bustest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus"
)

// testPublishConsume: messages published before and after the consumer
// starts arrive once each, with their subject and data, on attempt 1.
func testPublishConsume(t *testing.T, b bus.Bus) {
	msg := func(i int) bus.Message {
		return bus.Message{Queue: bus.Transform, Subject: fmt.Sprintf("img%d", i), ID: fmt.Sprintf("id%d", i), Data: fmt.Appendf(nil, "data %d", i)}
	}
	publish(t, b, msg(0))
	publish(t, b, msg(1))
	got := make(chan delivered, 10)
	consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 2},
		func(_ context.Context, d bus.Delivery) error { got <- record(d); return nil })
	publish(t, b, msg(2))

	seen := map[string]string{}
	for range 3 {
		d := recv(t, got, "a delivery")
		if d.Attempt != 1 || d.Last {
			t.Errorf("%s: attempt %d last %v, want 1 false", d.Subject, d.Attempt, d.Last)
		}
		if _, dup := seen[d.Subject]; dup {
			t.Errorf("%s delivered twice", d.Subject)
		}
		seen[d.Subject] = d.Data
	}
	for i := range 3 {
		m := msg(i)
		if seen[m.Subject] != string(m.Data) {
			t.Errorf("subject %s: data %q, want %q", m.Subject, seen[m.Subject], m.Data)
		}
	}
}

// testDedup: a re-published message ID is stored once. The marker
// published after it proves the absence: in one ordered queue a duplicate
// would have arrived before it.
func testDedup(t *testing.T, b bus.Bus) {
	got := make(chan delivered, 10)
	consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1},
		func(_ context.Context, d bus.Delivery) error { got <- record(d); return nil })
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "abc", ID: "same", Data: []byte("first")})
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "abc", ID: "same", Data: []byte("again")})
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "abc", ID: "marker", Data: []byte("marker")})
	if d := recv(t, got, "the message"); d.Data != "first" {
		t.Fatalf("got %q, want first", d.Data)
	}
	if d := recv(t, got, "the marker"); d.Data != "marker" {
		t.Fatalf("got %q after the first message, want the marker (duplicate not dropped)", d.Data)
	}
}

// testSharedDurable: two consumers on one durable split the work, each
// message handled once in total. Handlers hold their message until both
// consumers have one, which also proves that neither hoards the queue.
func testSharedDurable(t *testing.T, b bus.Bus) {
	const n = 20
	type hit struct {
		consumer int
		subject  string
	}
	got := make(chan hit, 2*n)
	var mu sync.Mutex
	started := [2]bool{}
	both := make(chan struct{})
	handler := func(i int) bus.Handler {
		return func(ctx context.Context, d bus.Delivery) error {
			got <- hit{i, d.Subject()}
			mu.Lock()
			if !started[i] {
				started[i] = true
				if started[0] && started[1] {
					close(both)
				}
			}
			mu.Unlock()
			select {
			case <-both:
			case <-ctx.Done():
			}
			return nil
		}
	}
	cfg := bus.ConsumerConfig{Queue: bus.Save, Durable: "save", Workers: 2}
	c0 := consume(t, b, cfg, handler(0))
	c1 := consume(t, b, cfg, handler(1))
	for i := range n {
		publish(t, b, bus.Message{Queue: bus.Save, Subject: fmt.Sprintf("s%d", i), Data: []byte("x")})
	}
	count := map[string]int{}
	per := [2]int{}
	for range n {
		h := recv(t, got, "a delivery (does one consumer hoard the queue?)")
		count[h.subject]++
		per[h.consumer]++
	}
	ctx := ctxFor(t)
	if err := errors.Join(c0.Drain(ctx), c1.Drain(ctx)); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("%d deliveries beyond the %d messages", len(got), n)
	}
	for s, c := range count {
		if c != 1 {
			t.Errorf("%s handled %d times", s, c)
		}
	}
	if len(count) != n || per[0] == 0 || per[1] == 0 {
		t.Errorf("%d distinct messages, split %v; want %d split over both", len(count), per, n)
	}
}

// testNoPrefetch: a NoPrefetch consumer holds only what its handlers have.
// With both its workers busy, one of them having come back for more (after
// a quick message), another consumer on the durable gets every message
// left; fetched ahead, one would wait behind the busy workers.
func testNoPrefetch(t *testing.T, b bus.Bus) {
	release := make(chan struct{})
	busy := make(chan string, 8)
	c := consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 2, NoPrefetch: true},
		func(ctx context.Context, d bus.Delivery) error {
			if d.Subject() == "quick" {
				return nil
			}
			busy <- d.Subject()
			// Held for as long as the test takes, which on a loaded
			// cluster may pass HungAfter: progress is reported.
			tick := time.NewTicker(HungAfter / 4)
			defer tick.Stop()
			for {
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return nil
				case <-tick.C:
					d.InProgress()
				}
			}
		})
	subjects := []string{"quick", "slow1", "slow2", "left1", "left2"}
	for _, s := range subjects {
		publish(t, b, bus.Message{Queue: bus.Transform, Subject: s, Data: []byte("x")})
	}
	seen := map[string]int{"quick": 1}
	seen[recv(t, busy, "the first busy handler")]++
	seen[recv(t, busy, "the second busy handler")]++

	other := make(chan string, 8)
	consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 2},
		func(_ context.Context, d bus.Delivery) error { other <- d.Subject(); return nil })
	for range 2 {
		seen[recv(t, other, "a message the busy consumer should not hold")]++
	}
	close(release)
	if err := c.Drain(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	none(t, other, "delivery beyond the five messages")
	for _, s := range subjects {
		if seen[s] != 1 {
			t.Errorf("%s handled %d times, want once (seen %v)", s, seen[s], seen)
		}
	}
}

// testFilter: a filtered consumer gets only matching subjects. The
// non-matching message goes first: unfiltered, it would arrive first.
func testFilter(t *testing.T, b bus.Bus) {
	got := make(chan delivered, 10)
	consume(t, b, bus.ConsumerConfig{Queue: bus.Save, Durable: "done", Workers: 1, Filter: "done.*"},
		func(_ context.Context, d bus.Delivery) error { got <- record(d); return nil })
	publish(t, b, bus.Message{Queue: bus.Save, Subject: "other.a", Data: []byte("other")})
	publish(t, b, bus.Message{Queue: bus.Save, Subject: "done.a", Data: []byte("done")})
	if d := recv(t, got, "the matching message"); d.Subject != "done.a" || d.Data != "done" {
		t.Fatalf("got %+v, want subject done.a", d)
	}
}

// testFanOut: two durables on the fan-out queue each see every event.
func testFanOut(t *testing.T, b bus.Bus) {
	const n = 5
	got := [2]chan string{make(chan string, 2*n), make(chan string, 2*n)}
	for i, name := range []string{"logger", "feed"} {
		consume(t, b, bus.ConsumerConfig{Queue: bus.Activity, Durable: name, Workers: 2},
			func(_ context.Context, d bus.Delivery) error { got[i] <- string(d.Data()); return nil })
	}
	for i := range n {
		publish(t, b, bus.Message{Queue: bus.Activity, Subject: "img", ID: fmt.Sprintf("ev%d", i), Data: fmt.Appendf(nil, "ev%d", i)})
	}
	for i := range got {
		seen := map[string]bool{}
		for range n {
			seen[recv(t, got[i], fmt.Sprintf("an event on durable %d", i))] = true
		}
		if len(seen) != n {
			t.Errorf("durable %d saw %d distinct events, want %d", i, len(seen), n)
		}
	}
}

// testPublishAsync: async publishes are all stored once Flush returns, and
// each one's outcome channel reports it stored.
func testPublishAsync(t *testing.T, b bus.Bus) {
	const n = 50
	outcomes := make([]<-chan error, n)
	for i := range n {
		m := bus.Message{Queue: bus.Activity, Subject: "img", ID: fmt.Sprintf("a%d", i), Data: fmt.Appendf(nil, "a%d", i)}
		var err error
		if outcomes[i], err = b.PublishAsync(m); err != nil {
			t.Fatalf("publish async %d: %v", i, err)
		}
	}
	if err := b.Flush(ctxFor(t)); err != nil {
		t.Fatalf("flush: %v", err)
	}
	for i, o := range outcomes {
		if err := recv(t, o, fmt.Sprintf("the outcome of async publish %d", i)); err != nil {
			t.Errorf("async publish %d: %v", i, err)
		}
	}
	got := make(chan string, 2*n)
	consume(t, b, bus.ConsumerConfig{Queue: bus.Activity, Durable: "logger", Workers: 4},
		func(_ context.Context, d bus.Delivery) error { got <- string(d.Data()); return nil })
	seen := map[string]bool{}
	for range n {
		seen[recv(t, got, "an async event")] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct events, want %d", len(seen), n)
	}
}

// testWatch: a watch sees events published after it started, in order,
// and returns when its context ends. Being ready is signalled by nothing
// but a delivery, so probes are published until one arrives.
func testWatch(t *testing.T, b bus.Bus) {
	publish(t, b, bus.Message{Queue: bus.Activity, Subject: "img", Data: []byte("old")})
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	seen := make(chan string, 1000)
	done := make(chan error, 1)
	seqs := map[string]uint64{}
	var mu sync.Mutex
	go func() {
		done <- b.Watch(ctx, bus.Activity, 0, func(seq uint64, data []byte) {
			mu.Lock()
			seqs[string(data)] = seq
			mu.Unlock()
			seen <- string(data)
		})
	}()

	// Until the watch's consumer exists, probes go unseen: on a loaded
	// cluster that can take seconds, so the wait is patience, not a count.
	ready := false
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); {
		publish(t, b, bus.Message{Queue: bus.Activity, Subject: "img", Data: []byte("probe")})
		select {
		case s := <-seen:
			if s == "old" {
				t.Fatal("watch delivered an event published before it started")
			}
			ready = true
		case err := <-done:
			t.Fatalf("watch returned early: %v", err)
		case <-time.After(probeEvery):
		}
		if ready {
			break
		}
	}
	if !ready {
		t.Fatalf("watch saw no probe within %s", patience)
	}
	publish(t, b, bus.Message{Queue: bus.Activity, Subject: "img", Data: []byte("e1")})
	publish(t, b, bus.Message{Queue: bus.Activity, Subject: "img", Data: []byte("e2")})
	var order []string
	for len(order) < 2 {
		switch s := recv(t, seen, "a watched event"); s {
		case "probe":
		case "e1", "e2":
			order = append(order, s)
		default:
			t.Fatalf("unexpected event %q", s)
		}
	}
	if order[0] != "e1" || order[1] != "e2" {
		t.Errorf("order %v, want [e1 e2]", order)
	}
	cancel()
	if err := recv(t, done, "watch to return"); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("watch returned %v", err)
	}

	// A watch from a sequence replays from that message on, with the
	// same sequences: how a client that lost the feed resumes it.
	mu.Lock()
	s1, s2 := seqs["e1"], seqs["e2"]
	mu.Unlock()
	if s1 == 0 || s2 <= s1 {
		t.Fatalf("sequences e1 %d, e2 %d", s1, s2)
	}
	ctx, cancel = context.WithCancel(ctxFor(t))
	defer cancel()
	type delivery struct {
		seq  uint64
		data string
	}
	replay := make(chan delivery, 100)
	go func() {
		done <- b.Watch(ctx, bus.Activity, s1, func(seq uint64, data []byte) { replay <- delivery{seq, string(data)} })
	}()
	for _, want := range []delivery{{s1, "e1"}, {s2, "e2"}} {
		if got := recv(t, replay, "a replayed event"); got != want {
			t.Errorf("replayed %+v, want %+v", got, want)
		}
	}
	cancel()
	if err := recv(t, done, "watch to return"); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("watch returned %v", err)
	}
}
