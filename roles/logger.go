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
		cfg: bus.ConsumerConfig{Queue: bus.Activity, Durable: "logger", Workers: workers, Retry: &bus.RetryForever, AckWait: loggerAckWait}}
}

// loggerAckWait is the logger's redelivery deadline, shorter than the
// bus's (which covers a render): a batch delivered on a connection that
// failed over is lost in flight, and comes again only at this deadline,
// its events missing from the timelines until then. A handler is one
// store write; one slower than this is delivered twice, which is harmless.
const loggerAckWait = 30 * time.Second

// handle keeps one batch in one store write. A retried batch is harmless:
// the store skips event ids it already has.
func (l *logger) handle(ctx context.Context, d bus.Delivery) error {
	events, _, err := DecodeActivity(d.Data())
	if err != nil {
		l.deps.Metrics.Handled.WithLabelValues("logger", "malformed").Inc()
		return bus.Permanent(fmt.Errorf("malformed activity message: %v", err))
	}
	if err := l.deps.Store.AppendEvents(ctx, events...); err != nil {
		return err
	}
	l.deps.Metrics.Handled.WithLabelValues("logger", "kept").Add(float64(len(events)))
	return nil
}
