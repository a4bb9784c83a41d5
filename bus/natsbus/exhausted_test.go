package natsbus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/bus/natsbus"
)

// TestExhaustedSettles: the delivery that follows attempts which all ended
// without a verdict (here: handlers stalled past AckWait) removes the
// message from the work queue, whether its handler returns nil (ack) or an
// error (term, not nak: no delivery would ever come after it). Nothing is
// left in the stream for ever. The conformance suite checks the
// deliveries; this checks what stays on the server.
func TestExhaustedSettles(t *testing.T) {
	ns := startServer(t, t.TempDir(), "")
	cfg := oneAttemptConfig("exhausted")
	b := connect(t, cfg, ns)
	stalled := make(chan struct{})
	verdicts := make(chan string, 4)
	if _, err := b.Consume(ctxFor(t), bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 4},
		func(ctx context.Context, d bus.Delivery) error {
			if !d.Exhausted() {
				select {
				case <-stalled:
				case <-ctx.Done():
				}
				return nil
			}
			verdicts <- d.Subject()
			if d.Subject() == "unrecorded" {
				return errors.New("could not record the failure")
			}
			return nil
		}); err != nil {
		t.Fatal(err)
	}
	// Registered after connect, so it runs before Close drains the
	// consumer and waits for the stalled handlers.
	t.Cleanup(func() { close(stalled) })
	for _, s := range []string{"recorded", "unrecorded"} {
		if err := b.Publish(ctxFor(t), bus.Message{Queue: bus.Transform, Subject: s, Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{recvData(t, verdicts): true, recvData(t, verdicts): true}
	if !seen["recorded"] || !seen["unrecorded"] {
		t.Fatalf("exhausted deliveries of %v, want both messages", seen)
	}

	stream, err := rawJS(t, ns).Stream(ctxFor(t), "EXHAUSTED_TRANSFORM")
	if err != nil {
		t.Fatal(err)
	}
	// Acks and terms are fire-and-forget: give them a moment.
	deadline := time.Now().Add(patience)
	for {
		info, err := stream.Info(ctxFor(t))
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d message(s) left in the work queue after their exhausted delivery", info.State.Msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// And none comes again.
	select {
	case s := <-verdicts:
		t.Fatalf("%s delivered again after its exhausted delivery", s)
	case <-time.After(2 * cfg.AckWait):
	}
}

// TestLastAttemptCutByShutdown: a hard shutdown (Drain's deadline passing)
// that cancels a last attempt must not terminate the message, since no
// verdict was written: another process then gets the Exhausted delivery.
// The same holds when the shutdown cuts that verdict delivery short too.
func TestLastAttemptCutByShutdown(t *testing.T) {
	ns := startServer(t, t.TempDir(), "")
	cfg := oneAttemptConfig("cutshort")
	seed := connect(t, cfg, ns)
	if err := seed.Publish(ctxFor(t), bus.Message{Queue: bus.Transform, Subject: "img", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	// The last attempt, then the first verdict delivery, each held by a
	// process shut down hard in the middle of it.
	for attempt := 1; attempt <= 2; attempt++ {
		started := make(chan bus.Delivery, 1)
		b := connect(t, cfg, ns)
		c, err := b.Consume(ctxFor(t), bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1},
			func(ctx context.Context, d bus.Delivery) error {
				started <- d
				<-ctx.Done() // work the shutdown interrupts
				return ctx.Err()
			})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-started:
			if d.Attempt() != attempt || d.Exhausted() != (attempt > 1) {
				t.Fatalf("delivery %d: attempt %d, exhausted %v", attempt, d.Attempt(), d.Exhausted())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("delivery %d never came: the previous one was terminated", attempt)
		}
		// The handler is cancelled before the deadline and returns: a
		// clean drain, with the delivery left unsettled all the same.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err = c.Drain(ctx)
		cancel()
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
	}

	last := connect(t, cfg, ns)
	verdict := make(chan bus.Delivery, 1)
	if _, err := last.Consume(ctxFor(t), bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1},
		func(_ context.Context, d bus.Delivery) error {
			verdict <- d
			return nil
		}); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-verdict:
		if !d.Exhausted() || d.Attempt() != 3 {
			t.Fatalf("redelivered as attempt %d, exhausted %v; want the second verdict delivery", d.Attempt(), d.Exhausted())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cut-short verdict delivery was never delivered again: terminated")
	}
}

// oneAttemptConfig gives a single attempt and a short ack deadline, so that
// verdict deliveries come within a test's patience.
func oneAttemptConfig(prefix string) natsbus.Config {
	cfg := testConfig(prefix)
	cfg.AckWait = 300 * time.Millisecond
	cfg.Retry = bus.Retry{MaxDeliver: 1}
	return cfg
}
