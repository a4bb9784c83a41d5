package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/internal/loglimit"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// consumer is one Bus.Consume: Workers goroutines reading one pull (a
// jetstream Consume that fetches ahead of them, or their own asks with
// NoPrefetch), replaced if the server ends it.
type consumer struct {
	b       *Bus
	cfg     bus.ConsumerConfig
	jcfg    jetstream.ConsumerConfig
	stream  string
	workers int
	retry   bus.Retry // the bus's policy or the consumer's override
	h       bus.Handler
	log     *slog.Logger

	hctx   context.Context // given to handlers
	cancel context.CancelFunc

	mu       sync.Mutex // orders Drain against reopen swapping it
	p        *pull
	stopping atomic.Bool
	stopCh   chan struct{}    // closed when Drain starts
	done     chan struct{}    // closed when every worker and held settlement has returned
	held     sync.WaitGroup   // settlements waiting for SettleAfter
	fetchLog loglimit.Limiter // pulls and NoPrefetch asks that fail
}

// pull is one server-side consumer and what reads it: a Consume that
// fetches ahead of the workers and hands them its messages one at a time
// through msgs, or, with NoPrefetch, the workers' own one-message fetches,
// which last as long as ctx.
//
// Not the Messages iterator: it buffers in a channel of PullMaxMessages,
// and on a reconnect it forgets what that channel holds and pulls a full
// batch again; with the workers busy the channel is full, and the client
// drops what does not fit (slow consumer), to come again only after
// AckWait. Consume's subscription queues instead (nats.go pending limits).
type pull struct {
	cons   jetstream.Consumer
	cc     jetstream.ConsumeContext // nil with NoPrefetch
	msgs   chan jetstream.Msg       // from cc to the workers, unbuffered
	closed <-chan struct{}          // closed when cc has ended
	ctx    context.Context
	cancel context.CancelFunc
}

// stop ends the reading at once: what was fetched ahead is dropped, and
// the server delivers it again after AckWait.
func (p *pull) stop() {
	p.cancel()
	if p.cc != nil {
		p.cc.Stop()
	}
}

// drain ends the reading, letting the workers (supervise, on Drain) take
// what was fetched ahead, to hand it back. Draining a subscription needs
// the server: with the connection down, it stops instead. A NoPrefetch
// worker's ask is cancelled: the server delivers nothing more to it once
// it hears of that (it checks for interest), and a message already on its
// way is lost with the ask, to come again after AckWait, as one lost in
// flight does.
func (p *pull) drain(connected bool) {
	if p.cc == nil || !connected {
		p.stop()
		return
	}
	p.cc.Drain()
}

// pullExpiry bounds one pull request, and so the time a lost one leaves a
// consumer deaf; an idle consumer pulls again this often.
const pullExpiry = 5 * time.Second

// consumerCheckEvery paces the check that the consumer still exists.
var consumerCheckEvery atomic.Int64

func init() { consumerCheckEvery.Store(int64(5 * time.Second)) }

func (c *consumer) open(ctx context.Context) (*pull, error) {
	cons, err := c.b.js.CreateOrUpdateConsumer(ctx, c.stream, c.jcfg)
	if err != nil {
		return nil, wrap("consumer "+c.cfg.Durable, err)
	}
	p := &pull{cons: cons}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if c.cfg.NoPrefetch {
		return p, nil
	}
	// Pull Workers at a time: with Workers busy that is 2×Workers held.
	// A pull request can be lost: sent to a replicated consumer whose
	// leader is not elected yet, or held by a leader that then goes away.
	// The client notices by missing heartbeats (two of them, each half the
	// expiry) and pulls again; at the default 30 s expiry that is a
	// consumer deaf for 30 s after it is created or its leader changes.
	// One message waits in the callback for a worker, the rest of the
	// batch in the subscription's queue.
	p.msgs = make(chan jetstream.Msg)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		select {
		case p.msgs <- msg:
		case <-p.ctx.Done(): // stopped: it comes again after AckWait
		}
	},
		jetstream.PullMaxMessages(c.workers),
		jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			// Transient (a leadership change, ...); a terminal error ends
			// cc, and run recreates it. A missed heartbeat is a pull lost
			// and asked again at once: nothing an operator need act on.
			switch {
			case errors.Is(err, jetstream.ErrNoHeartbeat):
				c.log.Debug("pull lost, asked again", "err", err)
				return
			case errors.Is(err, jetstream.ErrConnectionClosed):
				return // the bus closing: said where it closes
			}
			if ok, n := c.fetchLog.Allow(); ok {
				c.log.Warn("fetch failed", "err", err, "suppressed", n)
			}
		}),
	)
	if err != nil {
		p.cancel()
		return nil, wrap("consumer "+c.cfg.Durable, err)
	}
	p.cc, p.closed = cc, cc.Closed()
	return p, nil
}

// run keeps workers on the pull. It ends on Drain, on Close, or when the
// consumer is gone from the server (deleted by an operator,
// say): in the last case the consumer is recreated rather than left deaf.
func (c *consumer) run(p *pull) {
	defer func() {
		c.held.Wait()
		close(c.done)
	}()
	for p != nil {
		var wg sync.WaitGroup
		for range c.workers {
			if p.cc == nil {
				wg.Go(func() { c.fetch(p) })
			} else {
				wg.Go(func() { c.work(p) })
			}
		}
		workersDone, supervised := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(supervised)
			c.supervise(p, workersDone)
		}()
		wg.Wait()
		close(workersDone)
		<-supervised
		p.cancel()
		if c.stopping.Load() || c.b.nc.IsClosed() {
			return
		}
		c.log.Warn("subscription ended by the server; recreating the consumer")
		p = c.reopen()
	}
}

// supervise runs beside the workers of one pull. On Drain it empties the
// prefetch buffer at once (handing messages back) while the workers finish
// their handlers. Until then it checks now and then that the consumer
// still exists: deleted while no pull request was waiting on the server,
// it would leave a Consume silent forever, and asks failing for good.
func (c *consumer) supervise(p *pull, workersDone <-chan struct{}) {
	tick := time.NewTicker(time.Duration(consumerCheckEvery.Load()))
	defer tick.Stop()
	for {
		select {
		case <-workersDone:
			return
		case <-c.stopCh:
			if p.cc != nil {
				c.handBack(p)
			}
			return
		case <-tick.C:
		}
		if !c.b.nc.IsConnected() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := p.cons.Info(ctx)
		cancel()
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			c.log.Warn("consumer gone from the server", "err", err)
			c.mu.Lock()
			if !c.stopping.Load() {
				p.stop() // the workers return, and run recreates it
			}
			c.mu.Unlock()
			return
		}
	}
}

func (c *consumer) reopen() *pull {
	delay := 100 * time.Millisecond
	for {
		select {
		case <-c.stopCh:
			return nil
		case <-time.After(delay):
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		p, err := c.open(ctx)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if err = c.b.heal(ctx, err); err == nil {
				p, err = c.open(ctx)
			}
		}
		cancel()
		if err == nil {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.stopping.Load() {
				p.stop()
				return nil
			}
			c.p = p
			return p
		}
		if c.b.nc.IsClosed() {
			return nil
		}
		c.log.Warn("recreating consumer failed", "err", err, "retry_in", delay)
		delay = min(2*delay, 5*time.Second)
	}
}

// work is a worker of a prefetching pull: it handles messages until the
// pull ends or Drain starts (supervise then takes what was fetched ahead).
func (c *consumer) work(p *pull) {
	for {
		select {
		case msg := <-p.msgs:
			c.handle(msg)
		case <-p.closed:
			return
		case <-p.ctx.Done():
			return
		case <-c.stopCh:
			return
		}
	}
}

// handBack takes, on Drain, what the pull fetched ahead (handle hands it
// back) until the drained subscription has delivered all of it.
func (c *consumer) handBack(p *pull) {
	for {
		select {
		case msg := <-p.msgs:
			c.handle(msg)
		case <-p.closed:
			return
		case <-p.ctx.Done():
			return
		}
	}
}

// fetch is a NoPrefetch worker: it asks the server for one message when it
// is free, and handles it. Each ask lasts pullExpiry at most, for the same
// reason as Consume's pulls: one can be lost.
func (c *consumer) fetch(p *pull) {
	for p.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(p.ctx, pullExpiry)
		msg, err := p.cons.Next(jetstream.FetchContext(ctx))
		cancel()
		switch {
		case err == nil:
			c.handle(msg)
		case p.ctx.Err() != nil || c.b.nc.IsClosed():
			return
		case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
			// Nothing came: ask again.
		default:
			// The connection is down, the consumer's leader is
			// changing, the consumer is gone (supervise notices and
			// stops this pull), or the server already holds as many
			// waiting asks as the consumer allows (MaxWaiting, 512 by
			// default: idle workers of the fleet beyond that ask again
			// later). Not a spin meanwhile, nor a flood of the log.
			if ok, n := c.fetchLog.Allow(); ok {
				c.log.Warn("fetch failed", "err", err, "suppressed", n)
			}
			select {
			case <-p.ctx.Done():
			case <-time.After(fetchRetryAfter):
			}
		}
	}
}

// fetchRetryAfter paces a NoPrefetch worker's asks while they fail.
const fetchRetryAfter = 250 * time.Millisecond

// Drain stops pulling, hands back prefetched messages, and waits for the
// handlers in flight. If ctx ends first, handlers' context is cancelled
// (hard shutdown) and Drain returns without waiting further.
func (c *consumer) Drain(ctx context.Context) error {
	c.mu.Lock()
	if !c.stopping.Swap(true) {
		close(c.stopCh)
		c.p.drain(c.b.nc.IsConnected())
	}
	c.mu.Unlock()
	defer c.b.forget(c)
	// Handlers still running near the deadline are cancelled a little
	// before it, so that their naks reach the server while the connection
	// is open: a message handed back comes again after its backoff, one
	// left unsettled only after the ack wait. A handler that stops in time
	// has handed its message back, which is a clean drain.
	var handOver <-chan time.Time
	if deadline, ok := ctx.Deadline(); ok {
		t := time.NewTimer(time.Until(deadline) - min(maxHandOver, time.Until(deadline)/5))
		defer t.Stop()
		handOver = t.C
	}
	select {
	case <-c.done:
		c.cancel()
		return nil
	case <-handOver:
		c.log.Warn("drain deadline near: cancelling running handlers, their messages are handed back")
		c.cancel()
		select {
		case <-c.done:
			return nil
		case <-ctx.Done():
		}
	case <-ctx.Done():
		c.cancel()
	}
	return fmt.Errorf("natsbus: drain %s: %w", c.cfg.Durable, ctx.Err())
}

// maxHandOver is the most of a drain's time kept, at its end, for
// cancelled handlers to return and settle their messages (a fifth of it
// when the drain is short).
const maxHandOver = 2 * time.Second
