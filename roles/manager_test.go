package roles

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// probe is a Service that records what the manager does to it.
type probe struct {
	name     string
	log      *[]string
	mu       *sync.Mutex
	startErr error
	failed   chan error
}

func (p *probe) Name() string { return p.name }
func (p *probe) note(s string) {
	p.mu.Lock()
	*p.log = append(*p.log, s+" "+p.name)
	p.mu.Unlock()
}
func (p *probe) Start(context.Context) error { p.note("start"); return p.startErr }
func (p *probe) Stop(context.Context) error  { p.note("stop"); return nil }
func (p *probe) Failed() <-chan error        { return p.failed }

func probes(names ...string) ([]*probe, *[]string) {
	var log []string
	mu := &sync.Mutex{}
	var ps []*probe
	for _, n := range names {
		ps = append(ps, &probe{name: n, log: &log, mu: mu, failed: make(chan error, 1)})
	}
	return ps, &log
}

func managerOf(ps []*probe) *Manager {
	m := NewManager(slog.New(slog.DiscardHandler), time.Second)
	for _, p := range ps {
		m.Add(p)
	}
	return m
}

func TestManagerStartsInOrderAndStopsInReverse(t *testing.T) {
	ps, log := probes("logger", "transform", "http")
	m := managerOf(ps)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	<-m.Started()
	select {
	case <-m.Stopping():
		t.Fatal("stopping before shutdown")
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("clean stop returned %v", err)
	}
	want := []string{"start logger", "start transform", "start http", "stop http", "stop transform", "stop logger"}
	if !slices.Equal(*log, want) {
		t.Fatalf("got %v, want %v", *log, want)
	}
}

func TestManagerStopsEverythingWhenOneFails(t *testing.T) {
	ps, log := probes("logger", "http")
	m := managerOf(ps)
	var logged strings.Builder
	m.log = slog.New(slog.NewTextHandler(&logged, nil)) // written by Run's goroutine, read after it ends
	done := make(chan error)
	go func() { done <- m.Run(context.Background()) }()
	<-m.Started()
	ps[1].failed <- errors.New("address in use")
	err := <-done
	if err == nil || err.Error() != "http failed: address in use" {
		t.Fatalf("got %v", err)
	}
	if !slices.Contains(*log, "stop logger") {
		t.Fatalf("logger not stopped: %v", *log)
	}
	// The log says why the drain began, as it begins.
	if !strings.Contains(logged.String(), `level=ERROR msg="shutting down: draining in-flight work" because="http failed: address in use"`) {
		t.Fatalf("log: %s", logged.String())
	}
}

func TestManagerUndoesAFailedStart(t *testing.T) {
	ps, log := probes("logger", "transform", "http")
	ps[1].startErr = errors.New("no bus")
	err := managerOf(ps).Run(context.Background())
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{"start logger", "start transform", "stop logger"}
	if !slices.Equal(*log, want) {
		t.Fatalf("got %v, want %v", *log, want)
	}
}

func TestImageIDDependsOnBytesAndSpec(t *testing.T) {
	a := ImageID("abc", "width=10")
	if a != ImageID("abc", "width=10") || len(a) != 32 {
		t.Fatalf("id %q not stable or not 32 hex digits", a)
	}
	if a == ImageID("abd", "width=10") || a == ImageID("abc", "width=11") {
		t.Fatal("different input, same id")
	}
}
