package roles

import (
	"context"
	"errors"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/internal/loglimit"
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
	// deps, when set, is where a failed attempt is told: a Warn line (one
	// a second) and the handled counter's "retried" outcome. save2db and
	// the logger fail only when the store or the bus is away, and retry
	// for ever: without these an outage would be silent.
	deps    *Deps
	failLog loglimit.Limiter
}

func (r *consumerRole) Name() string { return r.name }

func (r *consumerRole) Start(ctx context.Context) (err error) {
	h := r.handle
	if r.deps != nil {
		h = r.told(h)
	}
	if r.act != nil {
		inner := h
		h = func(ctx context.Context, d bus.Delivery) error {
			err := inner(ctx, d)
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

// told wraps a handler so that its failed attempts are seen. A permanent
// refusal (a malformed message) is the handler's to count; a shutdown's
// cut is not a failure.
func (r *consumerRole) told(h bus.Handler) bus.Handler {
	return func(ctx context.Context, d bus.Delivery) error {
		err := h(ctx, d)
		if err == nil || bus.IsPermanent(err) || (ctx.Err() != nil && errors.Is(err, ctx.Err())) {
			return err
		}
		r.deps.Metrics.Handled.WithLabelValues(r.name, "retried").Inc()
		if ok, suppressed := r.failLog.Allow(); ok {
			r.deps.Log.Warn("a message could not be handled; it will come again",
				"attempt", d.Attempt(), "err", err, "suppressed", suppressed)
		}
		return err
	}
}
