package natsbus

import "time"

// delivery is bus.Delivery over one JetStream message.
type delivery struct {
	msg     jsMsg
	c       *consumer
	subject string
	attempt int
	last    bool
	// exhausted: a verdict delivery after Retry.MaxDeliver attempts that
	// ended without one (see Consume).
	exhausted bool
	// after holds the settlement (SettleAfter); nil settles at once.
	after <-chan struct{}
	// published is when the stream took the message: the longest it can
	// have waited for a worker (keepAlive).
	published time.Time
	hb        heartbeat
}

// verdictDeliveries is how many Exhausted deliveries a bounded message may
// get: one, then more only while the worker holding the previous one dies
// before settling it. They do no work, so it would take as many crashes
// or hard shutdowns within the few milliseconds each lasts to strand it.
const verdictDeliveries = 3

func (c *consumer) newDelivery(msg jsMsg) *delivery {
	d := &delivery{msg: msg, c: c, subject: c.b.names.trim(c.cfg.Queue, msg.Subject()), attempt: 1}
	if md, err := msg.Metadata(); err == nil {
		d.attempt, d.published = int(md.NumDelivered), md.Timestamp
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
	d.hb.progressed()
	d.inProgress()
}

func (d *delivery) inProgress() {
	if err := d.msg.InProgress(); err != nil {
		d.c.log.Debug("in-progress failed", "subject", d.subject, "err", err)
	}
}

func (d *delivery) SettleAfter(ready <-chan struct{}) { d.after = ready }
