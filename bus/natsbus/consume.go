package natsbus

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// Consume starts Workers handlers on the durable pull consumer cfg.Durable,
// shared by every process using that name (competing consumers). ctx bounds
// the setup only: the subscription lives until Drain or Close, and handlers
// receive a context carrying ctx's values that is cancelled only on a hard
// shutdown (Drain's or Close's deadline passing).
//
// Each process holds at most 2×Workers messages in handlers, fetched
// ahead or asked for, whatever happens to its connection; with
// NoPrefetch, only those its workers have taken. A settlement held by
// SettleAfter, heartbeat and all, is not counted: it frees its worker to
// take the next. The consumer's MaxAckPending bounds all processes
// together, so a stalled fleet stops pulling instead of piling up work.
//
// Outcome of a handler:
//   - nil: Ack (fire-and-forget, not AckSync: handlers are idempotent
//     anyway, since a late ack can always race a redelivery);
//   - error: Nak with Retry.Backoff[attempt-1] (last value repeated);
//   - Permanent error, or any error on the last attempt: Term, which also
//     removes the message from a work queue stream;
//   - panic: recovered, logged with its stack, treated as an error, except
//     on the last attempt: nothing was recorded then, so it is handed back
//     for the verdict delivery described below.
//
// Whichever it is waits for the channel given to SettleAfter, if any, in a
// goroutine of its own: the worker takes the next message meanwhile.
//
// A bounded Retry gives the server consumer verdictDeliveries more than
// Retry.MaxDeliver: the last attempt is settled by its handler (ack or
// term) unless it panicked or a hard shutdown cut it short, so the server
// delivers the message again only then, or if the worker holding the last
// attempt died or stalled past AckWait. That extra delivery is Exhausted:
// the handler records the failure without doing the work again, and any
// error from it is a Term too. Without it a message whose every worker
// crashed (a libvips segfault on a poison image, an OOM kill) would sit in
// the stream for ever, its image stuck in processing. The further ones are
// for a verdict delivery whose own worker died or was shut down hard
// before it could record anything.
func (b *Bus) Consume(ctx context.Context, cfg bus.ConsumerConfig, h bus.Handler) (bus.Consumer, error) {
	if err := knownQueue(cfg.Queue); err != nil {
		return nil, err
	}
	if cfg.Durable == "" || strings.ContainsAny(cfg.Durable, ".*> \t\r\n") {
		return nil, fmt.Errorf("natsbus: invalid durable name %q", cfg.Durable)
	}
	if h == nil {
		return nil, errors.New("natsbus: nil handler")
	}
	retry := b.cfg.Retry
	if cfg.Retry != nil {
		retry = *cfg.Retry
	}
	// A durable created earlier with another MaxDeliver (before the
	// verdict delivery existed, say) is updated by CreateOrUpdateConsumer.
	maxDeliver := -1 // JetStream's "unlimited"
	if retry.Forever() {
		retry.MaxDeliver = -1
	} else {
		maxDeliver = retry.MaxDeliver + verdictDeliveries
	}
	jcfg := jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   fmt.Sprintf("imgpipe %s consumer", cfg.Queue),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		// No server-side BackOff: JetStream applies BackOff to ack
		// timeouts only (not to Naks), and it replaces AckWait by
		// BackOff[0], so a 1s first backoff would hand every transform
		// longer than 1s to a second worker. AckWait covers crashed or
		// hung workers; Retry.Backoff is applied with NakWithDelay.
		AckWait:       ackWait(cfg.AckWait, b.cfg.AckWait),
		MaxDeliver:    maxDeliver,
		MaxAckPending: b.cfg.MaxAckPending,
	}
	if cfg.Filter != "" {
		if err := checkSubject(cfg.Filter, true); err != nil {
			return nil, err
		}
		jcfg.FilterSubject = b.names.subject(cfg.Queue, cfg.Filter)
	}

	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &consumer{
		b:       b,
		cfg:     cfg,
		jcfg:    jcfg,
		stream:  b.names.stream(cfg.Queue),
		workers: max(cfg.Workers, 1),
		retry:   retry,
		h:       h,
		log:     b.log.With("queue", string(cfg.Queue), "durable", cfg.Durable),
		hctx:    hctx,
		cancel:  cancel,
		stopCh:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	p, err := c.open(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	// Set before the bus knows of c: a Close from now on drains it.
	c.p = p
	if err := b.track(c); err != nil {
		p.stop()
		cancel()
		return nil, err
	}
	go c.run(p)
	return c, nil
}

func (c *consumer) handle(msg jsMsg) {
	d := c.newDelivery(msg)
	if c.stopping.Load() && !d.last && !d.exhausted {
		// Fetched but not started when Drain began: hand it back now
		// rather than after AckWait. This counts as a delivery; a message
		// on its last attempt, or exhausted, is handled instead, lest it
		// be stranded: the server would not deliver it again.
		c.report(d, "nak", msg.Nak())
		return
	}
	c.keepAlive(d)
	err := c.call(d)
	d.hb.handlerReturned()
	if d.after != nil && !ready(d.after) {
		c.settleLater(d, err)
		return
	}
	d.hb.stop()
	c.settle(d, err)
}

// ready reports whether ch is closed already.
func ready(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// settleLater settles d once its handler's SettleAfter channel is closed,
// or at once on a hard shutdown (what it waited for is then flushed by the
// shutdown itself, if it can be). Drain waits for it. A hold is bounded by
// half the bus's ack deadline: past that the server would deliver the
// message again while its outcome is known, repeating the work. (A
// consumer's shorter deadline is kept from passing meanwhile by keepAlive.)
func (c *consumer) settleLater(d *delivery, err error) {
	c.held.Add(1)
	go func() {
		defer c.held.Done()
		bound := c.b.cfg.AckWait / 2
		limit := time.NewTimer(bound)
		defer limit.Stop()
		select {
		case <-d.after:
		case <-c.hctx.Done():
		case <-limit.C:
			c.log.Warn("settled before what it waited for", "subject", d.subject, "attempt", d.attempt, "waited", bound)
		}
		d.hb.stop()
		c.settle(d, err)
	}()
}

// settle applies the outcome err of d's handler to its message.
func (c *consumer) settle(d *delivery, err error) {
	msg := d.msg
	switch {
	case err == nil:
		c.report(d, "ack", msg.Ack())
	case d.last && d.attempt < c.jcfg.MaxDeliver && c.hctx.Err() != nil:
		// A hard shutdown cut the last attempt (or a verdict delivery)
		// short, so no verdict was written. Terminated here, the image
		// would stay in progress for ever; left unsettled, the server
		// delivers it again after AckWait, Exhausted, and that handler
		// records the outcome.
		c.log.Warn("last attempt cut short by shutdown; left for a verdict delivery", "subject", d.subject, "attempt", d.attempt, "err", err)
	case d.last && d.attempt < c.jcfg.MaxDeliver && errors.Is(err, errPanicked):
		// A handler that panicked never wrote its verdict, as if its
		// process had crashed: handed back, the message comes again as a
		// verdict delivery, which records the failure without the work.
		c.report(d, "nak", msg.Nak())
	case bus.IsPermanent(err):
		c.report(d, "term", msg.TermWithReason(termReason("permanent", err)))
	case d.exhausted:
		// No delivery comes after this one: an error cannot be retried.
		c.report(d, "term", msg.TermWithReason(termReason("attempts exhausted", err)))
	case d.last:
		c.report(d, "term", msg.TermWithReason(termReason("last attempt", err)))
	default:
		delay := retryDelay(c.retry, d.attempt)
		c.log.Debug("handler failed; will retry", "subject", d.subject, "attempt", d.attempt, "in", delay, "err", err)
		if delay > 0 {
			c.report(d, "nak", msg.NakWithDelay(delay))
		} else {
			c.report(d, "nak", msg.Nak())
		}
	}
}

// errPanicked marks the error call makes of a panic.
var errPanicked = errors.New("natsbus: handler panicked")

// call runs the handler; a panic becomes an error so that one bad message
// cannot take the process (and every other in-flight message) down.
func (c *consumer) call(d *delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("handler panicked", "subject", d.subject, "attempt", d.attempt,
				"panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", errPanicked, r)
		}
	}()
	return c.h(c.hctx, d)
}

// report logs a failed ack/nak/term: the server then redelivers after
// AckWait, which idempotent handlers absorb.
func (c *consumer) report(d *delivery, what string, err error) {
	if err != nil {
		c.log.Warn(what+" failed", "subject", d.subject, "attempt", d.attempt, "err", err)
	}
}

// ackWait is the consumer's deadline: the bus's, or the consumer's own
// when that is shorter (bus.ConsumerConfig.AckWait).
func ackWait(consumer, bus time.Duration) time.Duration {
	if consumer > 0 {
		return min(consumer, bus)
	}
	return bus
}

// retryDelay is the wait before redelivering after the attempt-th failure.
func retryDelay(r bus.Retry, attempt int) time.Duration {
	if len(r.Backoff) == 0 {
		return 0
	}
	return r.Backoff[min(max(attempt-1, 0), len(r.Backoff)-1)]
}

// termReason fits the error on the one-line, bounded +TERM reason, which
// the server puts in its terminated advisory.
func termReason(why string, err error) string {
	s := why + ": " + strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
