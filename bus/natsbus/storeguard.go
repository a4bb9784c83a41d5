package natsbus

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/nats-io/nats-server/v2/server"
)

// A full disk breaks an embedded server in a way that outlives the full
// disk. When a stream's file store fails a write (ENOSPC), nats-server
// keeps the error and refuses every later write to that stream, even once
// there is room again, until the stream is loaded anew. On a cluster the
// replica steps down and another takes over; a single node has no other,
// so every upload would be refused until the process restarted, while
// /readyz said ready. storeGuard watches an embedded server for this: while
// JetStream is unhealthy, Ping fails (and /readyz with it) and writes are
// refused at once, and once the store's disk has room again it restarts
// JetStream in the process, which loads every stream again from its files.
// Nothing stored is lost: the restart reads what is on disk, and deliveries
// in flight come again after their ack wait.
type storeGuard struct {
	ns    *server.Server
	dir   string // the server's store directory: JetStream's parent
	log   *slog.Logger
	every time.Duration

	mu          sync.Mutex
	fault       error // the server's last health verdict, nil when healthy
	lastRestart time.Time
	users       int // buses on the server; guarded by guards.mu

	stop chan struct{}
	done chan struct{}
}

const (
	// guardEvery is how often the guard reads the server's health: a
	// directory listing and a lookup per stream.
	guardEvery = time.Second
	// minFreeToRestart is the room the store's disk needs before JetStream
	// is restarted: a restart onto a disk that is still full would only
	// fail again at the next write.
	minFreeToRestart = 32 << 20
	// restartEvery spaces restarts that did not heal the server.
	restartEvery = 10 * time.Second
)

// guards holds one guard per server, shared by the buses connected to it:
// two guards could restart JetStream under each other.
var guards = struct {
	sync.Mutex
	of map[*server.Server]*storeGuard
}{of: map[*server.Server]*storeGuard{}}

// guardServer returns ns's guard, started by its first bus.
func guardServer(ns *server.Server, log *slog.Logger) *storeGuard {
	guards.Lock()
	defer guards.Unlock()
	g := guards.of[ns]
	if g == nil {
		g = &storeGuard{ns: ns, log: log, every: guardEvery, stop: make(chan struct{}), done: make(chan struct{})}
		if c := ns.JetStreamConfig(); c != nil {
			g.dir = filepath.Dir(c.StoreDir) // the server adds "jetstream" itself
		}
		guards.of[ns] = g
		go g.run()
	}
	g.users++
	return g
}

// release stops the guard when its last bus closes.
func (g *storeGuard) release() {
	if g == nil {
		return
	}
	guards.Lock()
	g.users--
	last := g.users == 0
	if last {
		delete(guards.of, g.ns)
	}
	guards.Unlock()
	if last {
		close(g.stop)
		<-g.done
	}
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
	fault := health(g.ns)
	g.mu.Lock()
	was := g.fault
	g.fault = fault
	due := time.Since(g.lastRestart) >= restartEvery
	g.mu.Unlock()
	switch {
	case fault == nil:
		if was != nil {
			g.log.Info("embedded JetStream healthy again")
		}
		return
	case was == nil:
		g.log.Error("embedded JetStream cannot store: writes are refused until it heals", "err", fault)
	}
	if !due || g.dir == "" {
		return
	}
	if free, err := freeBytes(g.dir); err != nil || free < minFreeToRestart {
		return
	}
	g.restart()
}

// health is the server's own verdict on JetStream (its /healthz), which for
// a single server includes every stream's write error.
func health(ns *server.Server) error {
	h := ns.Healthz(&server.HealthzOptions{})
	if h.Status == "ok" {
		return nil
	}
	if h.Error == "" {
		return fmt.Errorf("JetStream is %s", h.Status)
	}
	return errors.New(h.Error)
}

// restart shuts JetStream down, keeping its files, and enables it again
// with the configuration the server started with: limits sized anew from
// the disk, sync options from the server's options.
func (g *storeGuard) restart() {
	g.mu.Lock()
	g.lastRestart = time.Now()
	g.mu.Unlock()
	g.log.Warn("restarting embedded JetStream to reload its streams", "dir", g.dir)
	if err := g.ns.ShutdownJetStream(); err != nil {
		g.log.Error("embedded JetStream did not shut down", "err", err)
		return
	}
	if err := g.ns.EnableJetStream(&server.JetStreamConfig{StoreDir: g.dir}); err != nil {
		g.log.Error("embedded JetStream did not start again; retrying", "err", err, "in", restartEvery)
		return
	}
	g.check()
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

func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
