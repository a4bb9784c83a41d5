package roles

import (
	"context"
	"time"

	"github.com/imgpipe/imgpipe/bus"
)

// redeliverAfter is the ack deadline (bus.ConsumerConfig.AckWait) of
// every worker role: a delivery whose worker died (a crash, an OOM kill, a
// SIGKILL when scaling down) or that was lost on a connection that failed
// over comes back this soon, not after the bus's ack wait (nats.ack_wait,
// two minutes by default, which covers a render). The bus keeps a slower
// handler's delivery alive meanwhile; a shorter nats.ack_wait applies here
// too.
const redeliverAfter = 30 * time.Second

// consumerRole runs a handler on one queue: what transform, save2db and
// logger have in common. Starting subscribes; stopping drains, so in-flight
// messages finish or go back to the queue for another instance.
type consumerRole struct {
	name     string
	cfg      bus.ConsumerConfig
	handle   bus.Handler
	b        bus.Bus
	consumer bus.Consumer
	// act, when set, holds each message's settlement until the activity
	// its handler emitted is stored: acked first, the message would not
	// come again, and a crash in between would lose the events for good.
	act *Activity
	// stopping, when set, is called as Stop begins, before the drain.
	stopping func()
}

func (r *consumerRole) Name() string { return r.name }

func (r *consumerRole) Start(ctx context.Context) (err error) {
	h := r.handle
	if r.act != nil {
		h = func(ctx context.Context, d bus.Delivery) error {
			err := r.handle(ctx, d)
			d.SettleAfter(r.act.Stored())
			return err
		}
	}
	r.consumer, err = r.b.Consume(ctx, r.cfg, h)
	return err
}

func (r *consumerRole) Stop(ctx context.Context) error {
	if r.stopping != nil {
		r.stopping()
	}
	return r.consumer.Drain(ctx)
}
