package natsbus

import (
	"sync"
	"time"
)

// keepAlive tells the server, while d's handler runs and while its
// settlement is held (SettleAfter), that its worker is alive, so that a
// consumer's ack deadline (bus.ConsumerConfig.AckWait) can be short: a
// delivery whose worker died comes back that soon, while one whose handler
// is slow stays with it. The handler gets the bus's ack wait
// (nats.ack_wait) from its start or its last InProgress, as it would
// without a keep-alive: past that it is deemed hung, the heartbeats stop,
// and its delivery goes to another worker a consumer deadline later.
// Beats come every third of the consumer's deadline; stop them with
// d.hb.stop before settling.
//
// A delivery waiting in the prefetch buffer for a worker has no
// heartbeat: the server's deadline runs from when it was handed out. So
// one that may have waited a third of the deadline (it is older than
// that) gets a beat as its handler starts; one that waited the whole
// deadline has gone to another worker already, and this one repeats it.
// A NoPrefetch consumer's deliveries go straight to a handler.
func (c *consumer) keepAlive(d *delivery) {
	if c.jcfg.AckWait >= c.b.cfg.AckWait {
		return // the deadline is the limit: nothing to bridge
	}
	every := c.jcfg.AckWait / 3
	if !c.cfg.NoPrefetch && time.Since(d.published) >= every {
		d.inProgress()
	}
	d.hb.start(every, c.b.cfg.AckWait, d.inProgress)
}

// heartbeat is one delivery's keep-alive (keepAlive). The zero value does
// nothing: the consumer needs none.
type heartbeat struct {
	mu           sync.Mutex
	every, limit time.Duration
	send         func()
	live         bool        // from start until stop
	returned     bool        // the handler has returned; no hung limit
	progress     time.Time   // the handler's start or last InProgress
	timer        *time.Timer // the next beat; nil when none is due
}

func (h *heartbeat) start(every, limit time.Duration, send func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.every, h.limit, h.send = every, limit, send
	h.live, h.progress = true, time.Now()
	h.arm()
}

// arm schedules the next beat; h.mu is held.
func (h *heartbeat) arm() { h.timer = time.AfterFunc(h.every, h.beat) }

func (h *heartbeat) beat() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.live {
		return
	}
	if !h.returned && time.Since(h.progress) >= h.limit {
		h.timer = nil // deemed hung, until it reports progress
		return
	}
	h.send()
	h.arm()
}

// progressed restarts the handler's time, and the beats if it had run out.
func (h *heartbeat) progressed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.progress = time.Now()
	if h.live && h.timer == nil {
		h.arm()
	}
}

// handlerReturned lifts the limit: what follows is a held settlement,
// bounded on its own (settleLater).
func (h *heartbeat) handlerReturned() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.returned = true
	if h.live && h.timer == nil {
		h.arm()
	}
}

func (h *heartbeat) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.live = false
	if h.timer != nil {
		h.timer.Stop()
		h.timer = nil
	}
}
