// Package bustest is the conformance suite of bus.Bus. It tests behaviour
// through the interface only, so every implementation can run it:
//
//	func TestConformance(t *testing.T) {
//		bustest.Run(t, func(t *testing.T) bus.Bus { return newIsolatedBus(t) })
//	}
package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus"
)

// Retry is the redelivery policy that buses given to Run must use: the
// suite's expectations about attempts and delays are derived from it.
var Retry = bus.Retry{
	MaxDeliver: 3,
	Backoff:    []time.Duration{50 * time.Millisecond, 100 * time.Millisecond},
}

// AckWait is the short redelivery deadline (ConsumerConfig.AckWait) the
// tests of stalled, slow and held handlers give their consumers. Only
// those have it: the others keep the bus's, longer, lest a loaded machine
// delay a prefetched delivery past it.
const AckWait = time.Second

// HungAfter is how long buses given to Run must let a handler run (from
// its start or its last InProgress) before deeming it hung: until then
// they keep its delivery alive, whatever the consumer's AckWait, with
// heartbeats at least every third of it; after, the delivery comes again
// within AckWait. The suite's stalled handlers stand for workers that hung
// or died.
const HungAfter = 3 * time.Second

const (
	// patience bounds every wait for something that must happen.
	patience = 10 * time.Second
	// quiet is how long the suite watches for something that must not
	// happen (a redelivery), where no event can signal its absence: well
	// beyond the longest Retry backoff.
	quiet = 400 * time.Millisecond
	// probeEvery paces probes sent until a watch is seen to be ready.
	probeEvery = 50 * time.Millisecond
)

// Run runs the suite. newBus must return an empty bus configured with
// Retry and HungAfter, isolated from every other bus it returns (subtests
// run in parallel), and closed by a cleanup it registers on t.
func Run(t *testing.T, newBus func(t *testing.T) bus.Bus) {
	tests := []struct {
		name string
		run  func(t *testing.T, b bus.Bus)
	}{
		{"PublishConsume", testPublishConsume},
		{"Dedup", testDedup},
		{"SharedDurable", testSharedDurable},
		{"NoPrefetch", testNoPrefetch},
		{"Filter", testFilter},
		{"FanOut", testFanOut},
		{"PublishAsync", testPublishAsync},
		{"Watch", testWatch},
		{"RetryAfterError", testRetryAfterError},
		{"LastAttempt", testLastAttempt},
		{"SlowHandlerKept", testSlowHandlerKept},
		{"Exhausted", testExhausted},
		{"Final", testFinal},
		{"RetryForever", testRetryForever},
		{"Permanent", testPermanent},
		{"Panic", testPanic},
		{"PanicOnLastAttempt", testPanicOnLastAttempt},
		{"DrainWaits", testDrainWaits},
		{"SettleAfter", testSettleAfter},
		{"SettleAfterBounded", testSettleAfterBounded},
		{"DrainWaitsForHeld", testDrainWaitsForHeld},
		{"Stage", testStage},
		{"StageSweep", testStageSweep},
		{"Queued", testQueued},
		{"StatusCreateRace", testStatusCreateRace},
		{"StatusGetPut", testStatusGetPut},
		{"StatusNeverUndone", testStatusNeverUndone},
		{"StatusWatch", testStatusWatch},
		{"Ping", testPing},
		{"BindStore", testBindStore},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newBus(t))
		})
	}
}

// ctxFor bounds one call of the bus.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	t.Cleanup(cancel)
	return ctx
}

func publish(t *testing.T, b bus.Bus, m bus.Message) {
	t.Helper()
	if err := b.Publish(ctxFor(t), m); err != nil {
		t.Fatalf("publish %s/%s: %v", m.Queue, m.Subject, err)
	}
}

// consume starts a consumer and drains it when the test ends (before the
// bus is closed: cleanups run last-in first-out).
func consume(t *testing.T, b bus.Bus, cfg bus.ConsumerConfig, h bus.Handler) bus.Consumer {
	t.Helper()
	c, err := b.Consume(ctxFor(t), cfg, h)
	if err != nil {
		t.Fatalf("consume %s/%s: %v", cfg.Queue, cfg.Durable, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if err := c.Drain(ctx); err != nil {
			t.Errorf("drain %s: %v", cfg.Durable, err)
		}
	})
	return c
}

// recv returns the next value from ch, failing the test after patience.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(patience)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %s waiting for %s", patience, what)
		panic("unreachable")
	}
}

// none fails if ch yields a value within quiet.
func none[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	timer := time.NewTimer(quiet)
	defer timer.Stop()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %+v", what, v)
	case <-timer.C:
	}
}

// delivered is what a handler saw, copied out of the Delivery.
type delivered struct {
	Subject   string
	Data      string
	Attempt   int
	Last      bool
	Exhausted bool
	Max       int // MaxAttempts
	Final     bool
	At        time.Time
}

func record(d bus.Delivery) delivered {
	return delivered{
		Subject: d.Subject(), Data: string(d.Data()),
		Attempt: d.Attempt(), Last: d.LastAttempt(), Exhausted: d.Exhausted(), Max: d.MaxAttempts(), Final: d.Final(), At: time.Now(),
	}
}
