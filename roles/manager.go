package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"
)

// Manager starts services in order and stops them in reverse order, so that
// the HTTP listener (started last) stops taking uploads before the workers
// behind it drain.
type Manager struct {
	services []Service
	log      *slog.Logger
	// StopTimeout bounds the whole drain on shutdown.
	StopTimeout time.Duration
	// started is closed once every service has started; stopping when
	// shutdown begins (/readyz reads it).
	started, stopping chan struct{}
}

// NewManager runs services in the given order.
func NewManager(log *slog.Logger, stopTimeout time.Duration, services ...Service) *Manager {
	return &Manager{services: services, log: log, StopTimeout: stopTimeout, started: make(chan struct{}), stopping: make(chan struct{})}
}

// Add appends services to start after those already given.
func (m *Manager) Add(s ...Service) { m.services = append(m.services, s...) }

// Started is closed once every service has started.
func (m *Manager) Started() <-chan struct{} { return m.started }

// Stopping is closed once shutdown has begun.
func (m *Manager) Stopping() <-chan struct{} { return m.stopping }

// Run starts every service, waits for ctx to end or a service to fail, then
// stops them all. It returns the first failure, or nil on a clean stop.
func (m *Manager) Run(ctx context.Context) error {
	started := 0
	var runErr error
	for _, s := range m.services {
		m.log.Debug("starting", "service", s.Name())
		if err := s.Start(ctx); err != nil {
			runErr = fmt.Errorf("%s: start: %w", s.Name(), err)
			break
		}
		started++
	}
	if runErr == nil {
		m.log.Info("all roles started", "services", m.names())
		close(m.started)
		runErr = m.wait(ctx)
	}
	close(m.stopping)
	stopCtx, cancel := context.WithTimeout(context.Background(), m.StopTimeout)
	defer cancel()
	for i := started - 1; i >= 0; i-- {
		s := m.services[i]
		if err := s.Stop(stopCtx); err != nil {
			m.log.Error("stop failed", "service", s.Name(), "err", err)
			runErr = errors.Join(runErr, fmt.Errorf("%s: stop: %w", s.Name(), err))
		} else {
			m.log.Debug("stopped", "service", s.Name())
		}
	}
	return runErr
}

// wait blocks until ctx ends (nil) or a service fails (its error).
func (m *Manager) wait(ctx context.Context) error {
	cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}}
	var owners []Service
	for _, s := range m.services {
		if f, ok := s.(Failer); ok {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(f.Failed())})
			owners = append(owners, s)
		}
	}
	i, v, _ := reflect.Select(cases)
	if i == 0 {
		m.log.Info("shutting down: draining in-flight work")
		return nil
	}
	err, _ := v.Interface().(error)
	err = fmt.Errorf("%s failed: %w", owners[i-1].Name(), err)
	// Said now, not only at exit: the drain may take a while, and its
	// lines would otherwise seem to have no cause.
	m.log.Error("shutting down: draining in-flight work", "because", err)
	return err
}

func (m *Manager) names() []string {
	n := make([]string, len(m.services))
	for i, s := range m.services {
		n[i] = s.Name()
	}
	return n
}
