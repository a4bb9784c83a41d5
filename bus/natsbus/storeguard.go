package natsbus

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/internal/diskspace"
)

// A full disk breaks an embedded server in a way that outlives the full
// disk. When a stream's file store fails a write (ENOSPC), nats-server
// keeps the error and refuses every later write to that stream, even once
// there is room again, until the stream is loaded anew. On a cluster the
// replica steps down and another takes over; a single node has no other,
// so every upload would be refused until the process restarted, while
// /readyz said ready. storeGuard watches an embedded server for this:
// while a stream cannot write, Ping fails (and /readyz with it) and writes
// are refused at once; and once the store's disk has room again, it starts
// the server again on its files (an Embedded; a fixed server is only
// reported). Nothing stored is lost: the new server reads what is on disk,
// the buses reconnect, and deliveries in flight come again after their ack
// wait.
//
// The whole server restarts, not JetStream inside it: nats-server's
// ShutdownJetStream leaves the JetStream API's subscription behind, and
// EnableJetStream adds another, so every API request would be handled
// once more per restart.
type storeGuard struct {
	srv   localServer
	dir   string // the server's store directory: JetStream's parent
	log   *slog.Logger
	every time.Duration

	mu          sync.Mutex
	fault       error // refusing writes for this, nil when healthy
	strikes     int   // checks in a row that found a write fault
	lastRestart time.Time
	restarts    int
	users       int // buses on the server; guarded by guards.mu

	stop chan struct{}
	done chan struct{}
}

const (
	// guardEvery is how often the guard reads the server's health: a
	// directory listing and a lookup per stream.
	guardEvery = time.Second
	// guardStrikes is how many checks in a row must find a fault before
	// writes are refused: the server reports a stream being created or
	// deleted as unhealthy for a moment.
	guardStrikes = 2
	// minFreeToRestart is the room the store's disk needs before the
	// server is restarted: onto a disk that is still full it would only
	// fail again at the next write.
	minFreeToRestart = 32 << 20
	// restartEvery spaces restarts that did not heal the server.
	restartEvery = 10 * time.Second
)

// guards holds one guard per server, shared by the buses connected to it:
// two guards could restart the server under each other.
var guards = struct {
	sync.Mutex
	of map[localServer]*storeGuard
}{of: map[localServer]*storeGuard{}}

// guardServer returns srv's guard, started by its first bus.
func guardServer(srv localServer, log *slog.Logger) *storeGuard {
	guards.Lock()
	defer guards.Unlock()
	g := guards.of[srv]
	if g == nil {
		g = &storeGuard{srv: srv, log: log, every: guardEvery, stop: make(chan struct{}), done: make(chan struct{})}
		if c := srv.current().JetStreamConfig(); c != nil {
			g.dir = filepath.Dir(c.StoreDir) // the server adds "jetstream" itself
		}
		guards.of[srv] = g
		go g.run()
	}
	g.users++
	return g
}

// release stops the guard when its last bus closes. It holds guards.mu
// until the guard has stopped, so that a bus connecting meanwhile starts a
// new guard only once this one can no longer restart the server.
func (g *storeGuard) release() {
	if g == nil {
		return
	}
	guards.Lock()
	defer guards.Unlock()
	if g.users--; g.users > 0 {
		return
	}
	close(g.stop)
	<-g.done
	delete(guards.of, g.srv)
}

func (g *storeGuard) run() {
	defer close(g.done)
	t := time.NewTicker(g.every)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			g.check()
		}
	}
}

func (g *storeGuard) check() {
	fault := writeFault(g.srv.current())
	g.mu.Lock()
	if fault == nil {
		g.strikes = 0
	} else {
		g.strikes++
	}
	was := g.fault
	if fault == nil || g.strikes >= guardStrikes {
		g.fault = fault
	}
	now := g.fault
	due := time.Since(g.lastRestart) >= restartEvery
	g.mu.Unlock()
	switch {
	case now == nil:
		if was != nil {
			g.log.Info("embedded JetStream can store again")
		}
		return
	case was == nil:
		g.log.Error("embedded JetStream cannot store: writes are refused until it heals", "err", now)
	}
	if !due || g.dir == "" {
		return
	}
	if free, err := diskspace.Free(g.dir); err != nil || free < minFreeToRestart {
		return
	}
	g.restart()
}

// writeFault reads the server's own health verdict (its /healthz) for what
// makes it refuse writes: a stream with a write error, or JetStream off.
// Its other complaints (a stream directory it cannot load, a consumer
// missing) refuse nothing, and a restart would not mend them.
func writeFault(ns *server.Server) error {
	h := ns.Healthz(&server.HealthzOptions{Details: true})
	for _, e := range h.Errors {
		switch {
		case e.Type == server.HealthzErrorJetStream,
			e.Type == server.HealthzErrorStream && strings.Contains(e.Error, "write error"):
			return errors.New(e.Error)
		}
	}
	return nil
}

// restart starts the server again on its files; the next check reports
// whether that healed it.
func (g *storeGuard) restart() {
	g.mu.Lock()
	g.lastRestart = time.Now()
	g.restarts++
	n := g.restarts
	g.mu.Unlock()
	g.log.Warn("restarting the embedded NATS server to reload its streams", "dir", g.dir, "restart", n)
	if err := g.srv.restart(); err != nil {
		g.log.Error("embedded NATS server not restarted", "err", err, "retry_in", restartEvery)
	}
}

// err is why writes are refused, or nil.
func (g *storeGuard) err() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fault == nil {
		return nil
	}
	return fmt.Errorf("%w: embedded JetStream cannot store: %w", bus.ErrUnavailable, g.fault)
}
