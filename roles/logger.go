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
// bus's (nats.ack_wait, which covers a render; a shorter one set there
// applies here too): a batch delivered on a connection that failed over
// is lost in flight, and comes again only at this deadline, its events
// missing from the timelines until then. A handler is one store write,
// bounded below it.
const loggerAckWait = 30 * time.Second

// handle keeps one batch in one store write. A retried batch is harmless:
// the store skips event ids it already has.
func (l *logger) handle(ctx context.Context, d bus.Delivery) error {
	events, _, err := DecodeActivity(d.Data())
	if err != nil {
		l.deps.Metrics.Handled.WithLabelValues("logger", "malformed").Inc()
		return bus.Permanent(fmt.Errorf("malformed activity message: %v", err))
	}
	// Bounded below the ack wait: a store that hangs (MongoDB looking for
	// a server, 30 s by default) fails the attempt, which then backs off,
	// instead of outliving the deadline and handing the batch to a second
	// worker while the first still waits on the recovering store.
	ctx, cancel := context.WithTimeout(ctx, loggerAckWait*2/3)
	defer cancel()
	if err := l.deps.Store.AppendEvents(ctx, events...); err != nil {
		return err
	}
	l.deps.Metrics.Handled.WithLabelValues("logger", "kept").Add(float64(len(events)))
	return nil
}
