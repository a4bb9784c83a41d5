package roles

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
)

// Logger is the logger role: it keeps every activity event in the store,
// where the API serves it as a timeline per image and a global feed.
type Logger struct {
	deps     Deps
	workers  int
	consumer bus.Consumer
}

// NewLogger runs workers handlers at once; with many, the store folds their
// writes into shared commits.
func NewLogger(d Deps, workers int) *Logger { return &Logger{deps: d, workers: workers} }

func (l *Logger) Name() string { return "logger" }

func (l *Logger) Start(ctx context.Context) error {
	c, err := l.deps.Bus.Consume(ctx, bus.ConsumerConfig{Queue: bus.Activity, Durable: "logger", Workers: l.workers, Retry: &bus.RetryForever}, l.handle)
	l.consumer = c
	return err
}

func (l *Logger) Stop(ctx context.Context) error { return l.consumer.Drain(ctx) }

func (l *Logger) handle(ctx context.Context, d bus.Delivery) error {
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
