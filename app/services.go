package app

import (
	"context"
	"fmt"

	"github.com/imgpipe/imgpipe/roles"
	"github.com/imgpipe/imgpipe/web"
)

// manager builds the services for the configured roles. Every process gets
// the HTTP listener (health, readiness and metrics whatever its roles); api
// and ui mount their routes on it, so in dev they share one port.
func (a *App) manager(deps roles.Deps) *roles.Manager {
	mgr := roles.NewManager(a.log, a.cfg.ShutdownTimeout)
	tagged := func(role string) roles.Deps {
		d := deps
		d.Log = deps.Log.With("role", role)
		return d
	}
	// First, so it stops last: it publishes the events of every role's drain.
	mgr.Add(deps.Activity)
	for _, r := range AllRoles {
		if !a.cfg.has(r) {
			continue
		}
		switch r {
		case RoleLogger:
			mgr.Add(roles.NewLogger(tagged(r), a.cfg.Workers.LoggerWorkers))
		case RoleSave2DB:
			mgr.Add(roles.NewSaver(tagged(r), a.cfg.Workers.SaveWorkers))
			mgr.Add(roles.NewStageSweeper(tagged(r)))
		case RoleTransform:
			mgr.Add(roles.NewTransformer(tagged(r), a.cfg.Workers.TransformWorkers))
		}
	}
	ready := func(ctx context.Context) error {
		if err := deps.Bus.Ping(ctx); err != nil {
			return fmt.Errorf("bus: %w", err)
		}
		if err := deps.Store.Ping(ctx); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	}
	a.http = web.NewServer(a.cfg.HTTP, a.log.With("role", "http"), deps.Metrics, ready, mgr.Stopping())
	if a.cfg.has(RoleAPI) {
		web.NewAPI(a.cfg.HTTP, roles.NewAPI(tagged(RoleAPI)), deps.Metrics, mgr.Stopping(), a.log.With("role", RoleAPI)).Mount(a.http.Echo())
	}
	if a.cfg.has(RoleUI) {
		web.MountUI(a.http.Echo())
	}
	mgr.Add(a.http)
	return mgr
}
