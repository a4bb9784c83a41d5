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
	"github.com/nats-io/nats.go/jetstream"
)

// consumer is one Consume: Workers goroutines reading one pull iterator,
// replaced if the server ends it.
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
	it       jetstream.MessagesContext
	stopping atomic.Bool
	stopCh   chan struct{}  // closed when Drain starts
	done     chan struct{}  // closed when every worker and held settlement has returned
	held     sync.WaitGroup // settlements waiting for SettleAfter
}

// pull is one server-side consumer and the iterator reading it.
type pull struct {
	cons jetstream.Consumer
	it   jetstream.MessagesContext
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
	// Pull Workers at a time: with Workers busy that is 2×Workers held.
	// A pull request can be lost: sent to a replicated consumer whose
	// leader is not elected yet, or held by a leader that then goes away.
	// The client notices by missing heartbeats (two of them, each half the
	// expiry) and pulls again; at the default 30 s expiry that is a
	// consumer deaf for 30 s after it is created or its leader changes.
	it, err := cons.Messages(
		jetstream.PullMaxMessages(c.workers),
		jetstream.PullExpiry(pullExpiry),
		jetstream.WithMessagesErrOnMissingHeartbeat(false),
	)
	if err != nil {
		return nil, wrap("consumer "+c.cfg.Durable, err)
	}
	return &pull{cons, it}, nil
}

// run keeps workers on the iterator. The iterator ends on Drain, on Close,
// or when the consumer is gone from the server (deleted by an operator,
// say): in the last case the consumer is recreated rather than left deaf.
func (c *consumer) run(p *pull) {
	defer func() {
		c.held.Wait()
		close(c.done)
	}()
	for p != nil {
		var wg sync.WaitGroup
		for range c.workers {
			wg.Go(func() { c.work(p.it) })
		}
		workersDone, supervised := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(supervised)
			c.supervise(p, workersDone)
		}()
		wg.Wait()
		close(workersDone)
		<-supervised
		if c.stopping.Load() || c.b.nc.IsClosed() {
			return
		}
		c.log.Warn("subscription ended by the server; recreating the consumer")
		p = c.reopen()
	}
}

// supervise runs beside the workers of one iterator. On Drain it empties
// the prefetch buffer at once (handing messages back) while the workers
// finish their handlers. Until then it checks now and then that the
// consumer still exists: deleted while no pull request was waiting on the
// server, it would leave the iterator silent forever.
func (c *consumer) supervise(p *pull, workersDone <-chan struct{}) {
	tick := time.NewTicker(time.Duration(consumerCheckEvery.Load()))
	defer tick.Stop()
	for {
		select {
		case <-workersDone:
			return
		case <-c.stopCh:
			c.work(p.it)
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
				p.it.Stop() // the workers return, and run recreates it
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
		cancel()
		if err == nil {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.stopping.Load() {
				p.it.Stop()
				return nil
			}
			c.it = p.it
			return p
		}
		if c.b.nc.IsClosed() {
			return nil
		}
		c.log.Warn("recreating consumer failed", "err", err, "retry_in", delay)
		delay = min(2*delay, 5*time.Second)
	}
}

func (c *consumer) work(it jetstream.MessagesContext) {
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			// Transient (leadership change, ...); a terminal error stops
			// the iterator, and the next call reports it closed.
			c.log.Warn("fetch failed", "err", err)
			continue
		}
		c.handle(msg)
	}
}

// Drain stops pulling, hands back prefetched messages, and waits for the
// handlers in flight. If ctx ends first, handlers' context is cancelled
// (hard shutdown) and Drain returns without waiting further.
func (c *consumer) Drain(ctx context.Context) error {
	c.mu.Lock()
	if !c.stopping.Swap(true) {
		close(c.stopCh)
		if c.b.nc.IsConnected() {
			c.it.Drain()
		} else {
			// Draining the subscription needs the server; with the
			// connection down, drop the prefetched messages instead:
			// the server redelivers them after AckWait.
			c.it.Stop()
		}
	}
	c.mu.Unlock()
	defer c.b.forget(c)
	select {
	case <-c.done:
		c.cancel()
		return nil
	case <-ctx.Done():
		c.cancel()
		return fmt.Errorf("natsbus: drain %s: %w", c.cfg.Durable, ctx.Err())
	}
}
