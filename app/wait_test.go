package app

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus/natsbus"
)

// An attempt to reach servers that do not answer is logged well before it
// times out, saying where without the password: a process started before
// its NATS cluster used to be silent for the attempt's whole 10 s.
func TestWaitForSaysWhatItWaitsFor(t *testing.T) {
	for in, want := range map[string]string{
		"mongodb://app:se,cret@m1,m2/db?replicaSet=rs0": "mongodb://xxxxx@m1,m2/db?replicaSet=rs0",
		"nats://u:pa ss@n1:4222,nats://u:p@n2:4222":     "nats://xxxxx@n1:4222,nats://xxxxx@n2:4222",
		"nats://n1:4222":   "nats://n1:4222",
		"/var/lib/imgpipe": "/var/lib/imgpipe",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
	defer func(d time.Duration) { waitQuiet = d }(waitQuiet)
	waitQuiet = 50 * time.Millisecond
	var mu sync.Mutex
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := waitFor(ctx, log, "bus", "nats://imgpipe:s3cret@n1:4222,nats://n2:4222", func(ctx context.Context) (int, error) {
		<-ctx.Done() // as a connection to a silent server does
		return 0, ctx.Err()
	})
	if err == nil {
		t.Fatal("waitFor succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	if !strings.Contains(out, `msg="waiting for bus" at=nats://xxxxx@n1:4222,nats://n2:4222 attempt=1`) || strings.Contains(out, "s3cret") {
		t.Errorf("log:\n%s", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestStartRefusesWhatTheServersCannotHold: three replicas on a NATS
// server that is not clustered were waited on for the whole startup
// timeout (two minutes by default), then reported as unreachable.
func TestStartRefusesWhatTheServersCannotHold(t *testing.T) {
	ns, err := natsbus.StartEmbeddedWith(natsbus.EmbeddedOptions{Dir: filepath.Join(t.TempDir(), "nats"), Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	cfg := DefaultConfig()
	cfg.DataDir, cfg.HTTP.Listen, cfg.Roles = t.TempDir(), "127.0.0.1:0", []string{RoleAPI}
	cfg.NATS.URL, cfg.NATS.Replicas = ns.ClientURL(), 3
	cfg.Store.URL = "local://" + filepath.Join(cfg.DataDir, "store")
	start := time.Now()
	err = New(cfg, slog.New(slog.DiscardHandler)).Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "replicas > 1 not supported") {
		t.Fatalf("run: %v, want the server's refusal of 3 replicas", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("refused after %s, want at once", took)
	}
}
