package roles

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/internal/natstest"
	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/store/local"
)

// realBus is a bus on an embedded nats-server of the test's own.
func realBus(t *testing.T) bus.Bus {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ns, err := natsbus.StartEmbedded(t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return connectTo(t, ns)
}

// connectTo connects a bus to ns, creating its streams if they are not
// there.
func connectTo(t *testing.T, ns *server.Server) bus.Bus {
	t.Helper()
	cfg := natsbus.DefaultConfig()
	cfg.URL = ""
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := natsbus.Connect(ctx, cfg, ns, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// watch collects the activity messages published from now on.
func watch(t *testing.T, b bus.Bus) <-chan []byte {
	t.Helper()
	msgs := make(chan []byte, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	started := make(chan struct{})
	go func() {
		close(started)
		_ = b.Watch(ctx, bus.Activity, 0, func(_ uint64, data []byte) { msgs <- data })
	}()
	<-started
	time.Sleep(200 * time.Millisecond) // let the watch's consumer exist
	return msgs
}

// storedBatches reads the activity stream from its start, as the logger
// does, until the test ends.
func storedBatches(t *testing.T, b bus.Bus) <-chan []byte {
	t.Helper()
	got := make(chan []byte, 16)
	c, err := b.Consume(t.Context(), bus.ConsumerConfig{Queue: bus.Activity, Durable: "logger", Workers: 1},
		func(_ context.Context, d bus.Delivery) error { got <- d.Data(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Drain(context.Background()) })
	return got
}

func event(i int) model.Event {
	return model.Event{ID: fmt.Sprintf("img%d.test.1", i), ImageID: fmt.Sprintf("img%d", i), Time: time.Now().UTC(), Role: "test", Event: "test"}
}

// next decodes the next message, or fails after wait.
func next(t *testing.T, msgs <-chan []byte, wait time.Duration) []model.Event {
	t.Helper()
	select {
	case data := <-msgs:
		evs, raw, err := DecodeActivity(data)
		if err != nil || len(raw) != len(evs) {
			t.Fatalf("decode %s: %v", data, err)
		}
		return evs
	case <-time.After(wait):
		t.Fatalf("no activity message within %s", wait)
		return nil
	}
}

// TestActivityBatches: events emitted together leave as one message, in
// order; a full batch leaves at once, without waiting for the linger; Stop
// publishes what is pending.
func TestActivityBatches(t *testing.T) {
	b := realBus(t)
	msgs := watch(t, b)
	a := NewActivity(b, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a.linger = time.Second // long enough to tell the linger from Stop and a full batch

	for i := range 3 {
		a.Emit(event(i))
	}
	got := next(t, msgs, 5*time.Second)
	if len(got) != 3 || got[0].ID != "img0.test.1" || got[2].ID != "img2.test.1" {
		t.Fatalf("first batch: %+v, want the 3 events in order", got)
	}

	for i := range activityBatchMax + 1 {
		a.Emit(event(100 + i))
	}
	// The batch leaves when full: the last event is not in it.
	if got := next(t, msgs, 5*time.Second); len(got) != activityBatchMax {
		t.Fatalf("full batch: %d events, want %d", len(got), activityBatchMax)
	}
	// The one event left is held for the linger; Stop sends it at once.
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := next(t, msgs, a.linger/2); len(got) != 1 || got[0].ImageID != fmt.Sprintf("img%d", 100+activityBatchMax) {
		t.Fatalf("after Stop: %+v, want the one pending event", got)
	}
	// After Stop nothing is held: a late event goes out alone, at once.
	a.Emit(event(999))
	if got := next(t, msgs, a.linger/2); len(got) != 1 || got[0].ImageID != "img999" {
		t.Fatalf("after Stop, a late event: %+v", got)
	}
	select {
	case data := <-msgs:
		t.Fatalf("unexpected message %s", data)
	case <-time.After(2 * a.linger):
	}
}

// isClosed reports whether ch is ready within wait.
func isClosed(ch <-chan struct{}, wait time.Duration) bool {
	select { // first alone: a select with both ready picks either
	case <-ch:
		return true
	default:
	}
	select {
	case <-ch:
		return true
	case <-time.After(wait):
		return false
	}
}

// TestActivityStored: Stored is ready at once while nothing was emitted,
// and otherwise only once every event emitted so far has been stored:
// held for the linger, released by the publish of the last batch, which
// the stream then holds.
func TestActivityStored(t *testing.T) {
	b := realBus(t)
	a := NewActivity(b, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a.linger = time.Hour // only Flush and full batches publish
	if !isClosed(a.Stored(), 0) {
		t.Fatal("Stored not ready with nothing emitted")
	}
	a.Emit(event(1))
	first := a.Stored()
	if isClosed(first, 200*time.Millisecond) {
		t.Fatal("Stored ready before the pending event was published")
	}
	a.Flush()
	a.Emit(event(2))
	second := a.Stored()
	if isClosed(second, 200*time.Millisecond) {
		t.Fatal("Stored ready with the second event still pending")
	}
	if !isClosed(first, 5*time.Second) {
		t.Fatal("the first batch was published but Stored never became ready")
	}
	a.Flush()
	if !isClosed(second, 5*time.Second) || !isClosed(a.Stored(), 0) {
		t.Fatal("Stored not ready after every batch was published")
	}
	// Everything settled, Stop says so even past its deadline (spent by
	// the roles' drain before it).
	spent, cancel := context.WithCancel(t.Context())
	cancel()
	for range 20 {
		if err := a.Stop(spent); err != nil {
			t.Fatalf("Stop with every batch settled: %v", err)
		}
	}
	// Both batches are in the stream, in order.
	got := storedBatches(t, b)
	for i := 1; i <= 2; i++ {
		if evs := next(t, got, 5*time.Second); len(evs) != 1 || evs[0].ImageID != fmt.Sprintf("img%d", i) {
			t.Fatalf("batch %d: %+v", i, evs)
		}
	}
}

// withoutActivityStream is a bus on a server of its own whose activity
// stream is gone, as an operator deleting it would leave it: publishes to
// it are refused until something creates it again.
func withoutActivityStream(t *testing.T) (bus.Bus, *server.Server) {
	t.Helper()
	ns, err := natsbus.StartEmbedded(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	b := connectTo(t, ns)
	js := natstest.JetStream(t, "", nats.InProcessServer(ns))
	if err := js.DeleteStream(t.Context(), "IMGPIPE_ACTIVITY"); err != nil {
		t.Fatal(err)
	}
	return b, ns
}

// TestActivityRepublishesARefusedBatch: a batch the bus does not store (here
// its stream is gone, as an operator deleting it would leave it) is
// published again until it is, and Stored waits for that: the work it
// records is not acknowledged with its events lost.
func TestActivityRepublishesARefusedBatch(t *testing.T) {
	b, ns := withoutActivityStream(t)

	a := NewActivity(b, nil, slog.New(slog.DiscardHandler))
	a.linger = time.Hour
	a.Emit(event(1))
	stored := a.Stored()
	a.Flush()
	if isClosed(stored, time.Second) {
		t.Fatal("Stored ready though the batch could not be stored")
	}
	connectTo(t, ns) // another process starting: it creates the stream again
	if !isClosed(stored, 10*time.Second) {
		t.Fatal("the stream is back, yet the batch was not stored")
	}
	if evs := next(t, storedBatches(t, b), 5*time.Second); len(evs) != 1 || evs[0].ImageID != "img1" {
		t.Fatalf("stored: %+v", evs)
	}
}

// TestConsumerRoleSettlesAfterItsActivity: a role's message is acked only
// once the events its handler emitted are stored, without holding its
// worker: until then Drain waits, and the next message is handled.
func TestConsumerRoleSettlesAfterItsActivity(t *testing.T) {
	b := realBus(t)
	a := NewActivity(b, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a.linger = time.Hour
	handled := make(chan string, 2)
	r := &consumerRole{name: "test", b: b, act: a,
		cfg: bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1},
		handle: func(_ context.Context, d bus.Delivery) error {
			a.Emit(event(len(handled)))
			handled <- d.Subject()
			return nil
		}}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"one", "two"} {
		if err := b.Publish(t.Context(), bus.Message{Queue: bus.Transform, Subject: id, Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-handled:
		case <-time.After(5 * time.Second):
			t.Fatalf("message %s not handled: the worker is held", id)
		}
	}
	drained := make(chan error, 1)
	go func() { drained <- r.Stop(context.Background()) }()
	select {
	case err := <-drained:
		t.Fatalf("drained (%v) before the handlers' events were stored", err)
	case <-time.After(300 * time.Millisecond):
	}
	a.Flush()
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("drain still waiting after the events were stored")
	}
}

func TestDecodeActivity(t *testing.T) {
	// A single event, as published before batching.
	evs, raw, err := DecodeActivity([]byte(`{"id":"a.accepted.1","image_id":"a","event":"accepted"}`))
	if err != nil || len(evs) != 1 || evs[0].ID != "a.accepted.1" || len(raw) != 1 {
		t.Fatalf("single: %+v %v", evs, err)
	}
	evs, _, err = DecodeActivity([]byte(`[{"id":"a.x.1"},{"id":"b.x.1"}]`))
	if err != nil || len(evs) != 2 || evs[1].ID != "b.x.1" {
		t.Fatalf("batch: %+v %v", evs, err)
	}
	for _, bad := range []string{``, `nonsense`, `[{"id":""}]`, `{"image_id":"a"}`, `[1,2]`} {
		if _, _, err := DecodeActivity([]byte(bad)); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// TestActivityKeptInTheStoreWhenTheBusRefusesIt: a batch the bus refuses
// for the retry bound, or until Stop, is written straight into the store,
// where the timelines read it, rather than dropped.
func TestActivityKeptInTheStoreWhenTheBusRefusesIt(t *testing.T) {
	b, _ := withoutActivityStream(t)
	st, err := local.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kept := func(id string) bool {
		evs, err := st.ImageEvents(t.Context(), id)
		return err == nil && len(evs) == 1 && evs[0].ID == id+".test.1"
	}

	// Refused past the retry bound.
	a := NewActivity(b, st, slog.New(slog.DiscardHandler))
	a.linger, a.retryFor = time.Hour, 300*time.Millisecond
	a.Emit(event(1))
	a.Emit(event(2))
	stored := a.Stored()
	a.Flush()
	if isClosed(stored, 100*time.Millisecond) || kept("img1") {
		t.Fatal("the batch went to the store before the retry bound")
	}
	if !isClosed(stored, 10*time.Second) {
		t.Fatal("Stored never ready")
	}
	if !kept("img1") || !kept("img2") {
		t.Fatal("the refused batch is not in the store")
	}

	// Refused until Stop.
	a = NewActivity(b, st, slog.New(slog.DiscardHandler))
	a.linger = time.Hour
	a.Emit(event(3))
	stored = a.Stored()
	a.Flush()
	if isClosed(stored, 300*time.Millisecond) {
		t.Fatal("Stored ready though the batch was refused")
	}
	// Stop returns once the batch is kept: the process closes the store
	// after it.
	if err := a.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !isClosed(stored, 0) || !kept("img3") {
		t.Fatal("Stop returned before the refused batch was kept in the store")
	}

	// The store refusing too (closed here), the batch is dropped, and the
	// store is not tried again for a while: batches behind do not wait.
	st.Close()
	counted := &countingStore{Store: st}
	a = NewActivity(b, counted, slog.New(slog.DiscardHandler))
	a.linger, a.retryFor = time.Hour, 100*time.Millisecond
	for i := 4; i <= 5; i++ {
		a.Emit(event(i))
		stored := a.Stored()
		a.Flush()
		if !isClosed(stored, 10*time.Second) {
			t.Fatalf("batch %d never settled", i)
		}
	}
	if n := counted.appends.Load(); n != 1 {
		t.Fatalf("the refusing store was asked %d times, want once", n)
	}
}

// countingStore counts the AppendEvents calls a real store gets.
type countingStore struct {
	store.Store
	appends atomic.Int32
}

func (c *countingStore) AppendEvents(ctx context.Context, events ...model.Event) error {
	c.appends.Add(1)
	return c.Store.AppendEvents(ctx, events...)
}

// TestActivityStopDoesNotWaitForAnUnansweredPublish: a publish nothing
// acknowledges (here the stream is gone and a plain subscriber takes its
// subject, so the client waits for its 30 s ack timeout) is given a moment
// once Stop is called, or the shutdown begins (Hurry), then its batch is
// kept in the store; Stop returns.
func TestActivityStopDoesNotWaitForAnUnansweredPublish(t *testing.T) {
	b, ns := withoutActivityStream(t)
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := nc.Subscribe("imgpipe.activity.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	st, err := local.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	a := NewActivity(b, st, slog.New(slog.DiscardHandler))
	a.linger = time.Hour
	a.Emit(event(1))
	stored := a.Stored()
	a.Flush()
	if isClosed(stored, 500*time.Millisecond) {
		t.Fatal("settled though nothing acknowledged the publish")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	evs, err := st.ImageEvents(t.Context(), "img1")
	if err != nil || len(evs) != 1 {
		t.Fatalf("kept: %+v %v", evs, err)
	}

	// Once the shutdown begins (before Stop, while the roles drain and
	// wait for their events), an unanswered publish is given up on too.
	a = NewActivity(b, st, slog.New(slog.DiscardHandler))
	a.linger = time.Hour
	stopping := make(chan struct{})
	a.Hurry(stopping)
	a.Emit(event(2))
	stored = a.Stored()
	a.Flush()
	if isClosed(stored, 500*time.Millisecond) {
		t.Fatal("settled though nothing acknowledged the publish")
	}
	close(stopping)
	if !isClosed(stored, 5*time.Second) {
		t.Fatal("the shutdown began, yet the batch still waits for the bus")
	}
	if evs, err := st.ImageEvents(t.Context(), "img2"); err != nil || len(evs) != 1 {
		t.Fatalf("kept once the shutdown began: %+v %v", evs, err)
	}
}
