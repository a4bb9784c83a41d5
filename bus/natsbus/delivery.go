package natsbus

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// delivery is bus.Delivery over one JetStream message.
type delivery struct {
	msg     jetstream.Msg
	c       *consumer
	subject string
	attempt int
	last    bool
	// exhausted: a verdict delivery after Retry.MaxDeliver attempts that
	// ended without one (see Consume).
	exhausted bool
	// after holds the settlement (SettleAfter); nil settles at once.
	after <-chan struct{}

	// The keep-alive (keepAlive): progress is when the handler began or
	// last called InProgress; beat is the next heartbeat, nil once the
	// handler has returned.
	mu       sync.Mutex
	progress time.Time
	beat     *time.Timer
}

// verdictDeliveries is how many Exhausted deliveries a bounded message may
// get: one, then more only while the worker holding the previous one dies
// before settling it. They do no work, so it would take as many crashes
// or hard shutdowns within the few milliseconds each lasts to strand it.
const verdictDeliveries = 3

func (c *consumer) newDelivery(msg jetstream.Msg) *delivery {
	d := &delivery{msg: msg, c: c, subject: c.b.names.trim(c.cfg.Queue, msg.Subject()), attempt: 1}
	if md, err := msg.Metadata(); err == nil {
		d.attempt = int(md.NumDelivered)
	} else {
		c.log.Warn("delivery without metadata", "subject", msg.Subject(), "err", err)
	}
	if !c.retry.Forever() {
		d.last = d.attempt >= c.retry.MaxDeliver
		d.exhausted = d.attempt > c.retry.MaxDeliver
	}
	return d
}

func (d *delivery) Subject() string   { return d.subject }
func (d *delivery) Data() []byte      { return d.msg.Data() }
func (d *delivery) Attempt() int      { return d.attempt }
func (d *delivery) LastAttempt() bool { return d.last }
func (d *delivery) Exhausted() bool   { return d.exhausted }

func (d *delivery) Final() bool {
	return !d.c.retry.Forever() && d.attempt >= d.c.jcfg.MaxDeliver
}

func (d *delivery) MaxAttempts() int {
	if d.c.retry.Forever() {
		return 0
	}
	return d.c.retry.MaxDeliver
}

// InProgress pushes the redelivery deadline back by AckWait, and restarts
// the time the keep-alive gives the handler. A failure (lost connection)
// only risks a redelivery, which handlers absorb.
func (d *delivery) InProgress() {
	d.mu.Lock()
	d.progress = time.Now()
	d.mu.Unlock()
	d.inProgress()
}

func (d *delivery) inProgress() {
	if err := d.msg.InProgress(); err != nil {
		d.c.log.Debug("in-progress failed", "subject", d.subject, "err", err)
	}
}

// keepAlive tells the server, while d's handler runs, that its worker is
// alive, so that a consumer's ack deadline (bus.ConsumerConfig.AckWait)
// can be short: a delivery whose worker died comes back that soon, while
// one whose handler is slow stays with it. The handler gets the bus's
// ack wait (nats.ack_wait) from its start or its last InProgress, as it
// would without a keep-alive: past that it is deemed hung, the heartbeats
// stop, and its delivery goes to another worker one consumer deadline
// later. The returned func stops the heartbeats; call it when the handler
// returns.
func (c *consumer) keepAlive(d *delivery) (stop func()) {
	every, limit := c.jcfg.AckWait/3, c.b.cfg.AckWait
	if c.jcfg.AckWait >= limit {
		return func() {} // the deadline is the limit: nothing to bridge
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.progress = time.Now()
	var beat func()
	beat = func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.beat == nil || time.Since(d.progress) >= limit {
			return // returned, or hung
		}
		d.inProgress()
		d.beat = time.AfterFunc(every, beat)
	}
	d.beat = time.AfterFunc(every, beat)
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.beat.Stop()
		d.beat = nil
	}
}

func (d *delivery) SettleAfter(ready <-chan struct{}) { d.after = ready }
