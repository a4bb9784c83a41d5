package natsbus

import (
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

// InProgress pushes the redelivery deadline back by AckWait. A failure
// (lost connection) only risks a redelivery, which handlers absorb.
func (d *delivery) InProgress() {
	if err := d.msg.InProgress(); err != nil {
		d.c.log.Debug("in-progress failed", "subject", d.subject, "err", err)
	}
}

func (d *delivery) SettleAfter(ready <-chan struct{}) { d.after = ready }
