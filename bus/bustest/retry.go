package bustest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus"
)

var errTransient = errors.New("bustest: transient failure")

// failUntil returns a handler that records every delivery and fails (with
// fail) until the given attempt.
func failUntil(got chan<- delivered, attempt int, fail func() error) bus.Handler {
	return func(_ context.Context, d bus.Delivery) error {
		got <- record(d)
		if d.Attempt() < attempt {
			return fail()
		}
		return nil
	}
}

// testRetryAfterError: an error brings the message back, with the attempt
// counted and not before the first backoff.
func testRetryAfterError(t *testing.T, b bus.Bus) {
	got := make(chan delivered, 10)
	consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1},
		failUntil(got, 2, func() error { return errTransient }))
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "abc", Data: []byte("x")})
	first := recv(t, got, "attempt 1")
	second := recv(t, got, "attempt 2")
	if first.Attempt != 1 || second.Attempt != 2 || first.Last || second.Last {
		t.Fatalf("attempts %+v then %+v, want 1 then 2, neither last", first, second)
	}
	if gap, min := second.At.Sub(first.At), Retry.Backoff[0]*9/10; gap < min {
		t.Errorf("redelivered after %s, want at least the backoff %s", gap, Retry.Backoff[0])
	}
	none(t, got, "delivery after success")
}

// testLastAttempt: a message that always fails is delivered MaxDeliver
// times, LastAttempt set on the final one only, and then no more.
func testLastAttempt(t *testing.T, b bus.Bus) {
	got := make(chan delivered, 10)
	consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1},
		failUntil(got, 1<<30, func() error { return errTransient }))
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "abc", Data: []byte("x")})
	for i := 1; i <= Retry.MaxDeliver; i++ {
		d := recv(t, got, "a retry")
		if d.Attempt != i || d.Last != (i == Retry.MaxDeliver) || d.Exhausted || d.Max != Retry.MaxDeliver {
			t.Fatalf("delivery %d: attempt %d last %v exhausted %v of %d", i, d.Attempt, d.Last, d.Exhausted, d.Max)
		}
	}
	none(t, got, "delivery after the last attempt")
}

// testSlowHandlerKept: a handler that runs past its consumer's AckWait,
// but not past HungAfter, keeps its delivery: nothing comes again while it
// runs, nor after it has returned. So does a NoPrefetch consumer's.
func testSlowHandlerKept(t *testing.T, b bus.Bus) {
	for _, noPrefetch := range []bool{false, true} {
		t.Run(fmt.Sprint("NoPrefetch=", noPrefetch), func(t *testing.T) { slowHandlerKept(t, b, noPrefetch) })
	}
}

func slowHandlerKept(t *testing.T, b bus.Bus, noPrefetch bool) {
	got := make(chan delivered, 10)
	consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 2, AckWait: AckWait, NoPrefetch: noPrefetch},
		func(ctx context.Context, d bus.Delivery) error {
			got <- record(d)
			select {
			case <-time.After(2 * AckWait):
			case <-ctx.Done():
			}
			return nil
		})
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "abc", Data: []byte("x")})
	recv(t, got, "the delivery")
	select {
	case d := <-got:
		t.Fatalf("delivered again while its handler ran: %+v", d)
	case <-time.After(4*AckWait + quiet):
	}
}

// testExhausted: when no attempt ends with a verdict (each handler stalls
// without settling, as a worker that hung would, and the bus deems it hung
// at HungAfter), the message is delivered once more, Exhausted, so that
// the failure can be recorded. If that delivery's worker stalls too,
// another Exhausted delivery follows; the first verdict returned settles
// it for good.
func testExhausted(t *testing.T, b bus.Bus) {
	const maxDeliver = 2
	// One worker per stalled delivery, and one for the verdict.
	got := consumeStalling(t, b, maxDeliver, maxDeliver+2, func(d bus.Delivery) bool {
		return d.Exhausted() && d.Attempt() > maxDeliver+1
	})
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "abc", Data: []byte("x")})

	var prev delivered
	for i := 1; i <= maxDeliver+2; i++ {
		d := recv(t, got, fmt.Sprintf("delivery %d", i))
		exhausted := i > maxDeliver
		if d.Attempt != i || d.Last != (i >= maxDeliver) || d.Exhausted != exhausted || d.Max != maxDeliver {
			t.Fatalf("delivery %d: attempt %d last %v exhausted %v; want attempt %d, last %v, exhausted %v",
				i, d.Attempt, d.Last, d.Exhausted, i, i >= maxDeliver, exhausted)
		}
		if i > 1 {
			// The last heartbeat may come a third of AckWait before
			// HungAfter.
			if gap := d.At.Sub(prev.At); gap < (HungAfter+AckWait*2/3)*9/10 {
				t.Errorf("delivery %d came %s after the previous one, before its handler was deemed hung (%s) and the ack deadline (%s) passed",
					i, gap, HungAfter, AckWait)
			}
		}
		prev = d
	}
	// Acked: nothing comes back, not even once the ack deadline has passed.
	select {
	case d := <-got:
		t.Fatalf("delivery after the exhausted one was settled: %+v", d)
	case <-time.After(2*AckWait + quiet):
	}
}

// testFinal: when every delivery stalls, Exhausted ones keep coming after
// the attempts, up to one marked Final; after it nothing comes, even once
// its handler is deemed hung and its ack deadline has passed unsettled. No
// delivery before it is Final.
func testFinal(t *testing.T, b bus.Bus) {
	const maxDeliver = 2
	got := consumeStalling(t, b, maxDeliver, 10, func(bus.Delivery) bool { return false })
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "abc", Data: []byte("x")})
	for i := 1; ; i++ {
		d := recv(t, got, fmt.Sprintf("delivery %d", i))
		if d.Attempt != i || (d.Final && !d.Exhausted) {
			t.Fatalf("delivery %d: %+v", i, d)
		}
		if d.Final {
			break
		}
		if i > maxDeliver+8 {
			t.Fatalf("%d deliveries and none Final", i)
		}
	}
	select {
	case d := <-got:
		t.Fatalf("delivery after the final one: %+v", d)
	case <-time.After(HungAfter + 2*AckWait + quiet):
	}
}

// consumeStalling consumes the transform queue with maxDeliver attempts and
// the short AckWait, on workers workers, recording every delivery; a
// delivery that settles (as decided) is acked, any other stalls without
// settling, as a worker that died or hung would, until the test ends.
func consumeStalling(t *testing.T, b bus.Bus, maxDeliver, workers int, settles func(bus.Delivery) bool) <-chan delivered {
	retry := bus.Retry{MaxDeliver: maxDeliver, Backoff: Retry.Backoff}
	got := make(chan delivered, 20)
	stalled := make(chan struct{})
	consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: workers, Retry: &retry, AckWait: AckWait},
		func(ctx context.Context, d bus.Delivery) error {
			got <- record(d)
			if settles(d) {
				return nil
			}
			select {
			case <-stalled:
			case <-ctx.Done():
			}
			return nil
		})
	// Registered after consume, so it runs before the drain waits for the
	// stalled handlers.
	t.Cleanup(func() { close(stalled) })
	return got
}

// testRetryForever: a consumer with its own unbounded policy keeps getting
// a failing message past the bus's MaxDeliver, never marked last.
func testRetryForever(t *testing.T, b bus.Bus) {
	got := make(chan delivered, 20)
	forever := bus.Retry{MaxDeliver: -1, Backoff: []time.Duration{20 * time.Millisecond}}
	want := Retry.MaxDeliver + 2
	consume(t, b, bus.ConsumerConfig{Queue: bus.Save, Durable: "save2db", Workers: 1, Retry: &forever},
		failUntil(got, want, func() error { return errTransient }))
	publish(t, b, bus.Message{Queue: bus.Save, Subject: "abc", Data: []byte("x")})
	for i := 1; i <= want; i++ {
		if d := recv(t, got, "a retry"); d.Attempt != i || d.Last || d.Exhausted || d.Max != 0 {
			t.Fatalf("delivery %d: attempt %d last %v exhausted %v of %d", i, d.Attempt, d.Last, d.Exhausted, d.Max)
		}
	}
	none(t, got, "delivery after success")
}

// testPermanent: a Permanent error is not retried.
func testPermanent(t *testing.T, b bus.Bus) {
	got := make(chan delivered, 10)
	consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1},
		failUntil(got, 1<<30, func() error { return bus.Permanent(errors.New("bustest: corrupt image")) }))
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "abc", Data: []byte("x")})
	if d := recv(t, got, "the delivery"); d.Attempt != 1 {
		t.Fatalf("attempt %d, want 1", d.Attempt)
	}
	none(t, got, "redelivery of a permanent failure")
}

// testPanic: a panicking handler is recovered, the message redelivered,
// and the consumer keeps working.
func testPanic(t *testing.T, b bus.Bus) {
	got := make(chan delivered, 10)
	consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1},
		failUntil(got, 2, func() error { panic("bustest: handler bug") }))
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "abc", Data: []byte("x")})
	if d := recv(t, got, "attempt 1"); d.Attempt != 1 {
		t.Fatalf("attempt %d, want 1", d.Attempt)
	}
	if d := recv(t, got, "attempt 2 after the panic"); d.Attempt != 2 {
		t.Fatalf("attempt %d, want 2", d.Attempt)
	}
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "def", Data: []byte("y")})
	if d := recv(t, got, "the next message"); d.Subject != "def" {
		t.Fatalf("got %+v, want subject def", d)
	}
}

// testPanicOnLastAttempt: a handler that panics on the last attempt has
// recorded nothing, like one whose process crashed: the message comes once
// more, Exhausted, instead of being dropped with the image unrecorded.
func testPanicOnLastAttempt(t *testing.T, b bus.Bus) {
	retry := bus.Retry{MaxDeliver: 2, Backoff: Retry.Backoff}
	got := make(chan delivered, 10)
	consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1, Retry: &retry},
		func(_ context.Context, d bus.Delivery) error {
			got <- record(d)
			if !d.Exhausted() {
				panic("bustest: the work crashes")
			}
			return nil
		})
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "abc", Data: []byte("x")})
	for i := 1; i <= retry.MaxDeliver+1; i++ {
		d := recv(t, got, fmt.Sprintf("delivery %d", i))
		if d.Attempt != i || d.Exhausted != (i > retry.MaxDeliver) {
			t.Fatalf("delivery %d: attempt %d, exhausted %v", i, d.Attempt, d.Exhausted)
		}
	}
	none(t, got, "delivery after the settled verdict")
}

// testDrainWaits: Drain returns only after the handler in flight has.
func testDrainWaits(t *testing.T, b bus.Bus) {
	entered := make(chan struct{})
	release := make(chan struct{})
	finished := make(chan struct{})
	c, err := b.Consume(ctxFor(t), bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1},
		func(context.Context, bus.Delivery) error {
			close(entered)
			<-release
			close(finished)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "abc", Data: []byte("x")})
	recv(t, entered, "the handler to start")

	drained := make(chan error, 1)
	ctx := ctxFor(t)
	go func() { drained <- c.Drain(ctx) }()
	select {
	case err := <-drained:
		t.Fatalf("drain returned (%v) while the handler was in flight", err)
	case <-time.After(quiet):
	}
	close(release)
	if err := recv(t, drained, "drain to return"); err != nil {
		t.Fatalf("drain: %v", err)
	}
	select {
	case <-finished:
	default:
		t.Fatal("drain returned before the handler finished")
	}
}

// testSettleAfter: a settlement held by SettleAfter is applied only once
// its channel is closed, and the worker takes other messages meanwhile.
// The settlement watched is a Nak (the handler fails): applied at once, it
// would bring the message back after the first backoff.
func testSettleAfter(t *testing.T, b bus.Bus) {
	ready := make(chan struct{})
	got := make(chan delivered, 10)
	consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1},
		func(_ context.Context, d bus.Delivery) error {
			got <- record(d)
			if d.Subject() == "held" && d.Attempt() == 1 {
				d.SettleAfter(ready)
				return errTransient
			}
			return nil
		})
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "held", Data: []byte("x")})
	recv(t, got, "the held message")
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "next", Data: []byte("y")})
	if d := recv(t, got, "the next message, while the first is held"); d.Subject != "next" {
		t.Fatalf("got %+v, want the next message", d)
	}
	none(t, got, "a redelivery while the settlement is held")
	close(ready)
	if d := recv(t, got, "the redelivery once released"); d.Subject != "held" || d.Attempt != 2 {
		t.Fatalf("got %+v, want attempt 2 of the held message", d)
	}
	none(t, got, "delivery after success")
}

// testSettleAfterBounded: a hold that is never released still ends, and
// the delivery is kept alive until then (the bus's deadline bounds the
// hold, here past the consumer's), so the server does not deliver a
// handled message again.
func testSettleAfterBounded(t *testing.T, b bus.Bus) {
	got := make(chan delivered, 10)
	consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1, AckWait: AckWait},
		func(_ context.Context, d bus.Delivery) error {
			got <- record(d)
			d.SettleAfter(make(chan struct{}))
			return nil
		})
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "abc", Data: []byte("x")})
	recv(t, got, "the delivery")
	select {
	case d := <-got:
		t.Fatalf("delivered again, the ack held past its deadline: %+v", d)
	case <-time.After(2*AckWait + quiet):
	}
}

// testDrainWaitsForHeld: Drain returns only once held settlements are
// applied; at its deadline (a hard shutdown) it applies them at once
// instead of waiting further, so the message does not wait out AckWait.
func testDrainWaitsForHeld(t *testing.T, b bus.Bus) {
	for _, tc := range []struct {
		durable string // and subtest name, and filter: one stream holds both
		hard    bool
	}{{"released", false}, {"deadline", true}} {
		t.Run(tc.durable, func(t *testing.T) {
			durable, hard := tc.durable, tc.hard
			subject := durable + ".abc"
			ready := make(chan struct{})
			entered := make(chan struct{}, 1)
			c, err := b.Consume(ctxFor(t), bus.ConsumerConfig{Queue: bus.Transform, Durable: durable, Filter: durable + ".*", Workers: 1},
				func(_ context.Context, d bus.Delivery) error {
					entered <- struct{}{}
					d.SettleAfter(ready)
					return errTransient
				})
			if err != nil {
				t.Fatal(err)
			}
			publish(t, b, bus.Message{Queue: bus.Transform, Subject: subject, Data: []byte("x")})
			recv(t, entered, "the handler")

			ctx, cancel := context.WithCancel(ctxFor(t))
			defer cancel()
			drained := make(chan error, 1)
			go func() { drained <- c.Drain(ctx) }()
			none(t, drained, "drain returning while a settlement is held")
			if hard {
				cancel()
				if err := recv(t, drained, "drain at its deadline"); err == nil {
					t.Fatal("drain past its deadline returned no error")
				}
			} else {
				close(ready)
				if err := recv(t, drained, "drain once released"); err != nil {
					t.Fatalf("drain: %v", err)
				}
			}
			// The Nak was applied: the message comes back at once to the
			// next consumer, not after AckWait.
			got := make(chan delivered, 10)
			consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: durable, Filter: durable + ".*", Workers: 1},
				failUntil(got, 0, nil))
			if d := recv(t, got, "the redelivery"); d.Attempt != 2 {
				t.Fatalf("got %+v, want attempt 2", d)
			}
		})
	}
}
