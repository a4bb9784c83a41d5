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
	cfg := testConfig("keepalive")
	cfg.AckWait = 3 * time.Second
	b := connect(t, cfg, startServer(t, t.TempDir(), ""))
	// Each half runs less than the bus's AckWait, both together more:
	// counted from the start only, the heartbeats would stop at 3 s and
	// the delivery come again at 4 s, a second before the handler ends.
	half := cfg.AckWait * 5 / 6
	got := make(chan int, 4)
	if _, err := b.Consume(ctxFor(t), bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 2, AckWait: time.Second},
		func(ctx context.Context, d bus.Delivery) error {
			got <- d.Attempt()
			for range 2 {
				select {
				case <-time.After(half):
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
	select {
	case a := <-got:
		t.Fatalf("delivered again (attempt %d) while its handler reported progress", a)
	case <-time.After(2*half + 2*time.Second):
	}
}

// A handler deemed hung that then reports progress gets its heartbeats
// back: the limit counts from its last InProgress, whether or not the
// beats had stopped.
func TestKeepAliveResumesAfterHung(t *testing.T) {
	t.Parallel()
	cfg := testConfig("resume")
	cfg.AckWait = 4 * time.Second // the limit; beats every second below
	b := connect(t, cfg, startServer(t, t.TempDir(), ""))
	got := make(chan int, 4)
	if _, err := b.Consume(ctxFor(t), bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 2, AckWait: 3 * time.Second},
		func(ctx context.Context, d bus.Delivery) error {
			got <- d.Attempt()
			// Past the limit the beats stop (the last at 3 s, the server's
			// deadline 6 s); progress at 4.5 s, then 3.5 s more: without
			// beats after it the delivery would come again at 7.5 s.
			for _, wait := range []time.Duration{4500 * time.Millisecond, 3500 * time.Millisecond} {
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
	if err := b.Publish(ctxFor(t), bus.Message{Queue: bus.Transform, Subject: "resumed"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(patience):
		t.Fatal("no delivery")
	}
	select {
	case a := <-got:
		t.Fatalf("delivered again (attempt %d) after its handler reported progress", a)
	case <-time.After(8*time.Second + 3*time.Second):
	}
}
