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
	"github.com/nats-io/nats.go/jetstream"
)

// consumer is one Bus.Consume: Workers goroutines reading one pull (what
// its fetcher asks for ahead of them, or their own asks with NoPrefetch),
// replaced if the consumer is gone from the server.
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
	fetchLog loglimit.Limiter // asks that fail
}

// pull is one server-side consumer and what reads it: a fetcher that asks
// for as many messages as the process may still hold (one slot each,
// freed when its handler returns) and passes them to the workers through
// msgs, or, with NoPrefetch, the workers' own one-message asks; either
// asks while fetching lasts.
//
// Not nats.go's Messages iterator, nor its Consume: on a reconnect both
// forget what they hold and pull a whole batch again. The iterator's
// buffer, full while the workers are busy, then overflows, and the client
// drops what does not fit (a slow consumer) until AckWait; Consume, whose
// callback would wait for a free worker, takes that wait for missed
// heartbeats and pulls another batch every few seconds. Slots bound what
// a process holds whatever happens to the asks.
type pull struct {
	cons     jetstream.Consumer
	ctx      context.Context // ends when the pull is stopped
	cancel   context.CancelFunc
	fetching context.Context    // ends on Drain, and with ctx
	endFetch context.CancelFunc // ends fetching
	// Prefetching only:
	slots chan struct{} // one per message asked for, fetched or in a handler
	msgs  chan jsMsg    // fetched, for the workers; closed when fetching ends
}

// stop ends the reading at once: what was fetched ahead is dropped, and
// the server delivers it again after AckWait.
func (p *pull) stop() { p.cancel() }

// drain ends the fetching, letting the workers (and supervise, on Drain)
// take what was fetched ahead, to hand it back. With the connection down
// the naks could not reach the server: it stops instead. An open ask is
// ended, the fetcher's as a NoPrefetch worker's: the server delivers
// nothing more to it once it hears of that (it checks for interest; with
// leaf nodes or gateways, only for asks over 2 s old). What the server
// had already sent to an ask is handed back with the rest (endAsk).
// Letting the asks run out instead would hold every drain for their
// expiry, and hand the messages they took meanwhile back, each a
// delivery spent.
func (p *pull) drain(connected bool) {
	if !connected {
		p.stop()
		return
	}
	p.endFetch()
}

// pullExpiry bounds one ask, and so the time a lost one leaves a consumer
// deaf; an idle consumer asks again this often.
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
	p.fetching, p.endFetch = context.WithCancel(p.ctx)
	if c.cfg.NoPrefetch {
		return p, nil
	}
	// Workers in handlers and as many fetched ahead.
	p.slots = make(chan struct{}, 2*c.workers)
	p.msgs = make(chan jsMsg, cap(p.slots))
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
		if p.msgs != nil {
			wg.Go(func() { c.prefetch(p) })
		}
		for range c.workers {
			if p.msgs == nil {
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
// still exists: deleted, it would leave asks failing for good.
func (c *consumer) supervise(p *pull, workersDone <-chan struct{}) {
	tick := time.NewTicker(time.Duration(consumerCheckEvery.Load()))
	defer tick.Stop()
	for {
		select {
		case <-workersDone:
			return
		case <-c.stopCh:
			if p.msgs != nil {
				c.work(p)
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

// prefetch is the fetcher of a pull: while it fetches, it asks the server
// for as many messages as there are free slots, waiting for a quarter of
// them at least (as nats.go's own pulls wait for half their batch): an ask
// a message would cost a round trip and a subscription each. No worker
// waits for that: while one is idle, nothing is buffered, and at least
// half the slots hold no message. It asks only while the connection is
// up: an ask made meanwhile would wait in the client's reconnect buffer
// and end without a word. It closes msgs when fetching ends, so that the
// workers take what is left and return.
func (c *consumer) prefetch(p *pull) {
	defer close(p.msgs)
	least := max(1, cap(p.slots)/4)
	for {
		n := 0
		for ; n < least; n++ {
			select {
			case p.slots <- struct{}{}:
			case <-p.fetching.Done():
				return
			}
		}
	free:
		for n < cap(p.slots) {
			select {
			case p.slots <- struct{}{}:
				n++
			default:
				break free
			}
		}
		if p.fetching.Err() != nil || !c.connected(p.fetching) {
			return
		}
		// msgs has room for every slot: delivering never waits.
		got, err := c.ask(p, n, func(m jsMsg) { p.msgs <- m })
		for range n - got {
			<-p.slots
		}
		if err != nil && !c.fetchFailed(p.fetching, err) {
			return
		}
	}
}

// work is a worker of a prefetching pull: it handles what the fetcher
// passes on until fetching has ended and nothing is left. Once Drain has
// begun, handle hands each message back; once the pull is stopped, what
// is left is dropped, to come again after AckWait.
func (c *consumer) work(p *pull) {
	for msg := range p.msgs {
		if p.ctx.Err() == nil {
			c.handle(msg)
		}
		<-p.slots
	}
}

// fetch is a NoPrefetch worker: it asks the server for one message when it
// is free, and handles it, until fetching ends. An ask that Drain ends
// brings what was on its way, which handle hands back; once the pull is
// stopped, it is dropped, to come again after AckWait.
func (c *consumer) fetch(p *pull) {
	for p.fetching.Err() == nil && c.connected(p.fetching) {
		var msg jsMsg
		_, err := c.ask(p, 1, func(m jsMsg) { msg = m })
		if msg != nil && p.ctx.Err() == nil {
			c.handle(msg)
		}
		if err != nil && !c.fetchFailed(p.fetching, err) {
			return
		}
	}
}

// fetchFailed paces and logs asks that fail, and tells whether to ask
// again: not once ctx has ended or the connection is closed. A server
// shutting down or a consumer's leader changing end the asks it held:
// asked again at once, they reach the next one. Otherwise the consumer has
// no leader yet, or is gone (supervise notices and stops the pull), or the
// server already holds as many waiting asks as the consumer allows
// (MaxWaiting, 512 by default: idle workers of the fleet beyond that ask
// again later). Not a spin meanwhile, nor a flood of the log.
func (c *consumer) fetchFailed(ctx context.Context, err error) bool {
	if ctx.Err() != nil || c.b.nc.IsClosed() {
		return false
	}
	if errors.Is(err, jetstream.ErrServerShutdown) || errors.Is(err, jetstream.ErrConsumerLeadershipChanged) {
		c.log.Debug("ask ended by the server; asking again", "err", err)
		return true
	}
	if ok, n := c.fetchLog.Allow(); ok {
		c.log.Warn("fetch failed", "err", err, "suppressed", n)
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(fetchRetryAfter):
		return true
	}
}

// connected waits, while ctx lasts, for the connection to be up, and
// tells whether it is.
func (c *consumer) connected(ctx context.Context) bool {
	for !c.b.nc.IsConnected() {
		if c.b.nc.IsClosed() {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(fetchRetryAfter):
		}
	}
	return true
}

// fetchRetryAfter paces asks while they fail, or while the connection is
// down.
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
