package natsbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus"
)

// The time a handler gets before it is deemed hung (the bus's AckWait)
// starts again at each InProgress: a handler that reports progress runs as
// long as it needs, on a consumer whose own deadline is far shorter.
func TestKeepAliveRestartsAtInProgress(t *testing.T) {
	t.Parallel()
	// Each wait is shorter than the bus's AckWait, both together longer:
	// counted from the start only, the heartbeats would stop at 3 s and
	// the delivery come again at 4 s, a second before the handler ends.
	deliveredOnce(t, 3*time.Second, time.Second, 2500*time.Millisecond, 2500*time.Millisecond)
}

// A handler deemed hung that then reports progress gets its heartbeats
// back: the limit counts from its last InProgress, whether or not the
// beats had stopped.
func TestKeepAliveResumesAfterHung(t *testing.T) {
	t.Parallel()
	// With beats every second, past the 4 s limit they stop (the last at
	// 3 s, the server's deadline 6 s); progress comes at 4.5 s, then 3.5 s
	// more: without beats after it the delivery would come again at 7.5 s.
	deliveredOnce(t, 4*time.Second, 3*time.Second, 4500*time.Millisecond, 3500*time.Millisecond)
}

// deliveredOnce runs one message through a handler that waits each of
// waits in turn, reporting progress after each, on a bus whose AckWait is
// busWait and a consumer whose own is ackWait, and fails if the message is
// delivered again while the handler runs or soon after.
func deliveredOnce(t *testing.T, busWait, ackWait time.Duration, waits ...time.Duration) {
	cfg := testConfig("keepalive")
	cfg.AckWait = busWait
	b := connect(t, cfg, startServer(t, t.TempDir(), ""))
	got := make(chan int, 4)
	if _, err := b.Consume(ctxFor(t), bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 2, AckWait: ackWait},
		func(ctx context.Context, d bus.Delivery) error {
			got <- d.Attempt()
			for _, wait := range waits {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return ctx.Err()
				}
				d.InProgress()
			}
			return nil
		}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctxFor(t), bus.Message{Queue: bus.Transform, Subject: "slow"}); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-got:
		if a != 1 {
			t.Fatalf("first delivery is attempt %d", a)
		}
	case <-time.After(patience):
		t.Fatal("no delivery")
	}
	var total time.Duration
	for _, wait := range waits {
		total += wait
	}
	select {
	case a := <-got:
		t.Fatalf("delivered again (attempt %d) while its handler reported progress", a)
	case <-time.After(total + 2*ackWait):
	}
}
