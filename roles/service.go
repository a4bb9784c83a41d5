// Package roles holds the five roles (api, ui, transform, save2db, logger)
// as services, and the manager that runs any subset of them under one
// lifecycle.
package roles

import "context"

// Service is one role, or a piece of a role such as the HTTP listener.
//
// Start returns once the service is taking work; Stop stops taking work,
// finishes or hands back what is in flight, and returns. A service that can
// break after Start (a listener that dies) also implements Failer.
type Service interface {
	Name() string
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Failer is implemented by services that can fail after Start. The manager
// stops the whole process when one does: a half-working process is worse
// than a restarted one.
type Failer interface {
	Failed() <-chan error
}
