package roles

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
)

// logger is the logger role: it keeps every activity event in the store,
// where the API serves it as a timeline per image and a global feed.
type logger struct{ deps Deps }

// NewLogger runs workers handlers at once; with many, the store folds their
// writes into shared commits. Like save2db it outlasts store outages.
func NewLogger(d Deps, workers int) Service {
	l := &logger{deps: d}
	return &consumerRole{name: "logger", b: d.Bus, handle: l.handle,
		cfg: bus.ConsumerConfig{Queue: bus.Activity, Durable: "logger", Workers: workers, Retry: &bus.RetryForever}}
}

func (l *logger) handle(ctx context.Context, d bus.Delivery) error {
	var ev model.Event
	if err := json.Unmarshal(d.Data(), &ev); err != nil || ev.ID == "" {
		l.deps.Metrics.Handled.WithLabelValues("logger", "malformed").Inc()
		return bus.Permanent(fmt.Errorf("malformed activity message: %v", err))
	}
	if err := l.deps.Store.AppendEvents(ctx, ev); err != nil {
		return err
	}
	l.deps.Metrics.Handled.WithLabelValues("logger", "kept").Inc()
	return nil
}
