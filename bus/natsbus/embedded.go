package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/imgpipe/imgpipe/internal/diskspace"
)

// EmbeddedOptions shapes an in-process nats-server, for a single-node
// deployment or a developer laptop. Streams on it run with one replica.
type EmbeddedOptions struct {
	// Dir holds the JetStream file store; required. A server restarted on
	// the same Dir finds its streams, status records and staged blobs.
	Dir string
	// Listen is "host:port" to also accept TCP clients (the nats CLI, other
	// processes, tests); port 0 picks a free port, read it back with
	// ClientURL. Empty means in-process only: no port is opened.
	Listen string
	// SyncAlways fsyncs every write before acknowledging it. The default
	// (fsync every 2 minutes) loses nothing on a process crash but can lose
	// recent writes on power loss.
	SyncAlways bool
	// ReadyTimeout bounds the wait for the server to start; default 10s.
	ReadyTimeout time.Duration
}

// StartEmbedded starts an in-process nats-server with JetStream storing
// under dir, without a network listener. Stop it with Shutdown (or let a Bus
// from OpenEmbedded own it).
func StartEmbedded(dir string, log *slog.Logger) (*server.Server, error) {
	return StartEmbeddedWith(EmbeddedOptions{Dir: dir}, log)
}

// StartEmbeddedWith is StartEmbedded with every option.
func StartEmbeddedWith(o EmbeddedOptions, log *slog.Logger) (*server.Server, error) {
	if o.Dir == "" {
		return nil, errors.New("natsbus: embedded server needs a store directory")
	}
	if log == nil {
		log = slog.Default()
	}
	maxStore, err := storeLimit(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("natsbus: embedded server: %w", err)
	}
	opts := &server.Options{
		ServerName:        "imgpipe-embedded",
		JetStream:         true,
		StoreDir:          o.Dir,
		SyncAlways:        o.SyncAlways,
		DontListen:        o.Listen == "",
		JetStreamMaxStore: maxStore,
		// The process owns its signals and its log; the server gets neither.
		NoSigs: true,
		NoLog:  true,
	}
	if o.Listen != "" {
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("natsbus: embedded listen address %q: %w", o.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("natsbus: embedded listen port %q is invalid", port)
		}
		if p == 0 {
			p = server.RANDOM_PORT // for nats-server, 0 means 4222
		}
		opts.Host, opts.Port = host, p
	}

	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsbus: embedded server: %w", err)
	}
	sl := serverLogger{log.With("component", "nats-server")}
	ns.SetLoggerV2(sl, sl.enabled(slog.LevelDebug), sl.enabled(levelTrace), false)
	ns.Start()

	wait := o.ReadyTimeout
	if wait <= 0 {
		wait = 10 * time.Second
	}
	if !ns.ReadyForConnections(wait) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsbus: embedded server not ready after %s", wait)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("natsbus: embedded server started without JetStream (is the store directory writable?)")
	}
	return ns, nil
}

// storeLimit is the JetStream store limit of an embedded server: the size
// of the file system under dir, so that only the disk itself limits it.
// Left to itself, nats-server sets the limit at each start to 3/4 of the
// space free then: on a disk that holds much already, or that is full
// when the process starts, that is below what the streams hold, and every
// write is refused as over the limit ("insufficient resources") until a
// restart on a roomier disk, while nothing looks broken. A full disk
// instead fails writes for real, which storeGuard sees and heals.
func storeLimit(dir string) (int64, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, err
	}
	return diskspace.Size(dir)
}

// levelTrace sits below Debug: the server's protocol traces are only for
// someone chasing a bug.
const levelTrace = slog.LevelDebug - 4

// serverLogger routes the server's printf-style log into slog so that it
// shares the process's format, level and destination.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) enabled(level slog.Level) bool {
	return l.log.Enabled(context.Background(), level)
}

func (l serverLogger) logf(level slog.Level, format string, v []any) {
	if l.enabled(level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (l serverLogger) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v) } // the startup banner is notices
func (l serverLogger) Warnf(format string, v ...any)   { l.logf(slog.LevelWarn, format, v) }
func (l serverLogger) Errorf(format string, v ...any)  { l.logf(slog.LevelError, format, v) }
func (l serverLogger) Debugf(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }
func (l serverLogger) Tracef(format string, v ...any)  { l.logf(levelTrace, format, v) }

// Fatalf is logged as an error; the embedding process decides whether to
// exit (the server's own logger would call os.Exit).
func (l serverLogger) Fatalf(format string, v ...any) {
	l.logf(slog.LevelError, "fatal: "+format, v)
}

// Embedded is an in-process server that can be started again on its
// files. Buses connected to it with ConnectEmbedded reach it in process
// through InProcessConn, which hands out a connection to whichever server
// is current: to them a restart is a server that went away and came back,
// and they reconnect by themselves, as over TCP.
type Embedded struct {
	opts EmbeddedOptions
	log  *slog.Logger

	mu     sync.Mutex // serializes Restart and Shutdown
	closed bool
	// last is the server started last (running, or stopped by a Restart
	// that failed or by Shutdown); live is the one to connect to, nil
	// while a restart is under way. Atomics, so that neither waits for a
	// restart: nats.go asks for a connection holding its own lock, which
	// every call on that connection then waits for.
	last atomic.Pointer[server.Server]
	live atomic.Pointer[server.Server]
}

// StartEmbeddedServer is StartEmbeddedWith, restartable.
func StartEmbeddedServer(o EmbeddedOptions, log *slog.Logger) (*Embedded, error) {
	ns, err := StartEmbeddedWith(o, log)
	if err != nil {
		return nil, err
	}
	if o.Listen != "" {
		// A restart listens where TCP clients already connect: a port
		// picked at random stays the one picked.
		o.Listen = ns.Addr().String()
	}
	e := &Embedded{opts: o, log: log}
	e.last.Store(ns)
	e.live.Store(ns)
	return e, nil
}

// Server is the server started last.
func (e *Embedded) Server() *server.Server { return e.last.Load() }

// errRestarting answers a connection asked for during a restart: the
// client backs off and asks again.
var errRestarting = errors.New("natsbus: the embedded server is restarting")

// InProcessConn connects to the current server (nats.InProcessConnProvider).
func (e *Embedded) InProcessConn() (net.Conn, error) {
	ns := e.live.Load()
	if ns == nil {
		return nil, errRestarting
	}
	return ns.InProcessConn()
}

// Restart shuts the server down and starts a new one on the same files,
// with the same options. If the new one does not start, connections fail
// until a Restart succeeds. After Shutdown it does nothing but fail.
func (e *Embedded) Restart() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("natsbus: the embedded server is shut down")
	}
	e.live.Store(nil)
	old := e.last.Load()
	old.Shutdown()
	old.WaitForShutdown()
	ns, err := StartEmbeddedWith(e.opts, e.log)
	if err != nil {
		return err
	}
	e.last.Store(ns)
	e.live.Store(ns)
	return nil
}

// Shutdown stops the server for good.
func (e *Embedded) Shutdown() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	e.live.Store(nil)
	ns := e.last.Load()
	ns.Shutdown()
	ns.WaitForShutdown()
}

// localServer is a server in this process that a bus connects to without
// TCP: a plain *server.Server (fixed), or an *Embedded.
type localServer interface {
	nats.InProcessConnProvider
	current() *server.Server
	// restart starts the server again on its files, or fails if it cannot.
	restart() error
}

func (e *Embedded) current() *server.Server { return e.Server() }
func (e *Embedded) restart() error          { return e.Restart() }

// fixed is a server the bus did not start and cannot restart.
type fixed struct{ *server.Server }

func (f fixed) current() *server.Server { return f.Server }
func (f fixed) restart() error {
	return errors.New("natsbus: this embedded server was not started restartable (StartEmbeddedServer)")
}
