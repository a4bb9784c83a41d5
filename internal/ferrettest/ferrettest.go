// Package ferrettest runs an embedded FerretDB (a MongoDB wire-protocol
// server on SQLite) inside the test process, so the mongo store can be tested
// without a MongoDB server. Only tests may import it: it pulls the whole of
// FerretDB and SQLite into the binary.
package ferrettest

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Start runs FerretDB with its SQLite files under dir, listening on
// 127.0.0.1 on a free TCP port, and returns a mongodb:// URI for it (with no
// database in the path: add one per test). stop shuts the server down and
// waits for it; it is safe to call more than once. Several servers may run in
// one process, each on its own dir.
func Start(dir string) (uri string, stop func(), err error) {
	// Port 0: the kernel picks a free port, so parallel test binaries
	// never collide. The listener is bound in New, so the URI is known
	// before Run.
	return StartOn(dir, "127.0.0.1:0")
}

// StartOn is Start listening on addr: a server stopped and started again
// on the same dir and address is, to its clients, one that was down for a
// while.
func StartOn(dir, addr string) (uri string, stop func(), err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	sqliteDir := filepath.Join(abs, "ferretdb")
	if err := os.MkdirAll(sqliteDir, 0o755); err != nil {
		return "", nil, err
	}
	// FerretDB wants a file: URI naming an existing directory, ending in "/".
	sqliteURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(sqliteDir) + "/"}).String()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: addr},
		// FerretDB is chatty at info level; keep its warnings and errors.
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})).With("component", "ferretdb"),
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
	})
	if err != nil {
		return "", nil, fmt.Errorf("ferrettest: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx) // returns nil once ctx is cancelled and everything is closed
	}()

	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			// A hung connection must not hang the whole test binary.
		}
	}
	return f.MongoDBURI(), stop, nil
}

// For starts a server for t, stopped when t ends, and returns the URI of a
// database on it: a store every process of a test shares, as the
// processes of a deployment share one MongoDB (a local store has one
// process at a time). Call it before starting what uses it, so that the
// server outlives them.
func For(t testing.TB) string {
	t.Helper()
	uri, stop, err := Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return uri + "imgpipe"
}
