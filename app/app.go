package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"time"

	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/roles"
	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/store/storeopen"
	"github.com/imgpipe/imgpipe/transform"
	"github.com/imgpipe/imgpipe/web"
)

// App is one imgpipe process: whichever roles its config names, on one bus
// and one store, under one lifecycle. Tests start it for real on port 0.
type App struct {
	cfg   Config
	log   *slog.Logger
	ready chan struct{}
	http  *web.Server
}

// New prepares an App; nothing is opened until Run.
func New(cfg Config, log *slog.Logger) *App {
	return &App{cfg: cfg, log: log, ready: make(chan struct{})}
}

// Ready is closed once every role has started.
func (a *App) Ready() <-chan struct{} { return a.ready }

// Addr is the HTTP address, valid after Ready.
func (a *App) Addr() net.Addr { return a.http.Addr() }

// Run opens the bus and the store, runs the roles until ctx ends or one
// fails, drains them, and closes everything in reverse order.
func (a *App) Run(ctx context.Context) (err error) {
	if err := a.cfg.Validate(); err != nil {
		return err
	}
	var ns *natsbus.Embedded
	natsCfg := a.cfg.NATS
	var room func(pending int64) error // uploads' room on the data dir's disk, when it holds them
	if a.cfg.Embedded && (natsCfg.URL == "" || a.cfg.Store.URL == "") {
		if a.cfg.DataDirMinFree > 0 {
			room = (&diskRoom{dir: a.cfg.DataDir, min: a.cfg.DataDirMinFree}).check
		}
		release, err := lockDataDir(a.cfg.DataDir)
		if err != nil {
			return err
		}
		defer release() // deferred first, so it runs last
	}
	if a.cfg.Embedded && natsCfg.URL == "" {
		eo := natsbus.EmbeddedOptions{Dir: filepath.Join(a.cfg.DataDir, "nats"), SyncAlways: natsCfg.SyncAlways}
		if ns, err = natsbus.StartEmbeddedServer(eo, a.log.With("component", "nats")); err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
		a.log.Info("embedded NATS server with JetStream", "dir", eo.Dir, "sync_always", eo.SyncAlways)
		// Deferred before the bus, so it runs after the bus has drained
		// and closed its connection.
		defer ns.Shutdown()
	}
	if !a.cfg.sharesBlobs() {
		natsCfg.StageCacheBytes = 0 // see sharesBlobs
	}
	if natsCfg.SyncAlways && ns == nil {
		a.log.Warn("nats.sync_always is for the embedded server; set sync_interval: always on the NATS servers instead")
	}
	startCtx, cancel := context.WithTimeout(ctx, a.cfg.StartupTimeout)
	defer cancel()
	b, err := waitFor(startCtx, a.log, "bus", cmp.Or(natsCfg.URL, "the embedded server"), func(ctx context.Context) (*natsbus.Bus, error) {
		if ns != nil {
			return natsbus.ConnectEmbedded(ctx, natsCfg, ns, a.cfg.Instance, a.log.With("component", "bus"))
		}
		return natsbus.Connect(ctx, natsCfg, nil, a.cfg.Instance, a.log.With("component", "bus"))
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.Close()) }()

	if err := refuseFreshStore(startCtx, b, a.cfg, ns != nil); err != nil {
		return err
	}
	st, err := waitFor(startCtx, a.log, "store", cmp.Or(a.cfg.Store.URL, a.cfg.DataDir), func(ctx context.Context) (store.Store, error) {
		s, err := storeopen.Open(ctx, a.cfg.Store.URL, a.cfg.DataDir, a.log.With("component", "store"))
		if err == nil {
			if err = s.Ping(ctx); err != nil {
				s.Close()
			}
		}
		return s, err
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	binding, err := bindStore(startCtx, b, st, a.cfg, ns != nil, a.log)
	if err != nil {
		return err
	}

	eng, err := transform.New(a.cfg.Transform, a.log.With("component", "vips"))
	if err != nil {
		return err
	}
	defer eng.Close()
	defer moreProcs(&a.cfg, a.log)()

	metrics := roles.NewMetrics()
	deps := roles.Deps{Bus: b, Store: st, Engine: eng, Instance: a.cfg.Instance, Log: a.log, Metrics: metrics,
		Activity: roles.NewActivity(b, st, a.log.With("component", "activity")), Room: room}
	mgr := a.manager(deps)
	deps.Activity.Hurry(mgr.Stopping())
	if ns == nil {
		// Only a bus other processes share can be moved to another store.
		mgr.Add(newBindingCheck(b, binding, a.log.With("component", "store-binding")))
	}
	go func() {
		select {
		case <-mgr.Started():
			close(a.ready)
		case <-ctx.Done():
		}
	}()
	return mgr.Run(ctx)
}

// waitQuiet is how long an attempt of waitFor runs before it is logged.
var waitQuiet = 2 * time.Second

// redactURLs hides the credentials in a list of URLs: whatever lies
// between a scheme's "://" and the last "@" before the path. Parsing each
// URL would miss a password holding a comma or a space, which a list
// cannot be split on first.
func redactURLs(list string) string { return userinfo.ReplaceAllString(list, "://xxxxx@") }

var userinfo = regexp.MustCompile(`://[^/?#]*@`)

// waitFor retries open with backoff until it succeeds or ctx ends, so that a
// process started before its bus or store (as in a cluster coming up) waits
// for them instead of failing. The first failure is logged at once. A
// configuration the servers cannot hold fails at once: no wait mends it.
func waitFor[T any](ctx context.Context, log *slog.Logger, what, at string, open func(context.Context) (T, error)) (T, error) {
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		// An attempt may wait its whole 10 s for servers that do not
		// answer: say what it waits for, without credentials, well before.
		slow := time.AfterFunc(waitQuiet, func() { log.Warn("waiting for "+what, "at", redactURLs(at), "attempt", attempt) })
		v, err := open(tctx)
		slow.Stop()
		cancel()
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil || errors.Is(err, natsbus.ErrMisconfigured) || errors.Is(err, store.ErrMisconfigured) {
			return v, fmt.Errorf("%s: %w", what, err)
		}
		log.Warn("waiting for "+what, "attempt", attempt, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%s not reachable: %w", what, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}
