package roles

import (
	"context"

	"github.com/imgpipe/imgpipe/bus"
)

// consumerRole runs a handler on one queue: what transform, save2db and
// logger have in common. Starting subscribes; stopping drains, so in-flight
// messages finish or go back to the queue for another instance.
type consumerRole struct {
	name     string
	cfg      bus.ConsumerConfig
	handle   bus.Handler
	b        bus.Bus
	consumer bus.Consumer
}

func (r *consumerRole) Name() string { return r.name }

func (r *consumerRole) Start(ctx context.Context) (err error) {
	r.consumer, err = r.b.Consume(ctx, r.cfg, r.handle)
	return err
}

func (r *consumerRole) Stop(ctx context.Context) error { return r.consumer.Drain(ctx) }
