package roles

import (
	"context"
	"fmt"
	"time"

	"github.com/imgpipe/imgpipe/bus"
)

// logger is the logger role: it keeps every activity event in the store,
// where the API serves it as a timeline per image and a global feed.
type logger struct{ deps Deps }

// NewLogger runs workers handlers at once; with many, the store folds their
// writes into shared commits. Like save2db it outlasts store outages.
func NewLogger(d Deps, workers int) Service {
	l := &logger{deps: d}
	return &consumerRole{name: "logger", b: d.Bus, handle: l.handle,
		cfg: bus.ConsumerConfig{Queue: bus.Activity, Durable: "logger", Workers: workers, Retry: &bus.RetryForever, AckWait: redeliverAfter}, deps: &l.deps}
}

// storeWriteMax bounds one batch's store write: a store that hangs fails
// the attempt, which backs off and tries again, rather than holding the
// batch, its events missing from the timelines, for as long as the bus
// lets a handler run.
const storeWriteMax = 20 * time.Second

// handle keeps one batch in one store write. A retried batch is harmless:
// the store skips event ids it already has.
func (l *logger) handle(ctx context.Context, d bus.Delivery) error {
	events, _, err := DecodeActivity(d.Data())
	if err != nil {
		l.deps.Metrics.Handled.WithLabelValues("logger", "malformed").Inc()
		return bus.Permanent(fmt.Errorf("malformed activity message: %v", err))
	}
	// A store that hangs (MongoDB looking for a server, 30 s by default)
	// fails the attempt at storeWriteMax, which then backs off.
	ctx, cancel := context.WithTimeout(ctx, storeWriteMax)
	defer cancel()
	if err := l.deps.Store.AppendEvents(ctx, events...); err != nil {
		return err
	}
	l.deps.Metrics.Handled.WithLabelValues("logger", "kept").Add(float64(len(events)))
	return nil
}
