package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/app"
	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/ferrettest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// TestProcessWithAnotherStoreRefused: processes sharing a bus must share
// its store. A save2db worker given a mistyped database would take images
// off the shared queue into a database nobody reads; it is refused at
// start, saying which store the bus's images are kept in, and the images
// stay where the others find them. --rebind-store moves the bus to another
// store for good: then a running process of the old store stops by itself,
// and is refused when it starts again.
func TestProcessWithAnotherStoreRefused(t *testing.T) {
	t.Cleanup(app.SetBindingCheckEvery(100 * time.Millisecond))
	ns, err := natsbus.StartEmbeddedServer(natsbus.EmbeddedOptions{Dir: filepath.Join(t.TempDir(), "nats"), Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	right := ferrettest.For(t)
	wrong := right + "2" // the database imgpipe2 on the same server
	config := func(instance, storeURL string, roles ...string) app.Config {
		cfg := apptest.Config(t)
		cfg.Instance, cfg.Roles, cfg.NATS.URL, cfg.Store.URL = instance, roles, ns.Server().ClientURL(), storeURL
		return cfg
	}
	// run starts cfg and returns the error it stops with, or nil if it
	// is still running a moment later (then stopped).
	run := func(cfg app.Config) error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a := app.New(cfg, slog.New(slog.DiscardHandler))
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		select {
		case err := <-done:
			return err
		case <-a.Ready():
			cancel()
			return <-done
		case <-time.After(time.Minute):
			t.Fatal("neither started nor refused within a minute")
			return nil
		}
	}

	front := apptest.Start(t, config("front", right, app.RoleAPI, app.RoleTransform, app.RoleSave2DB, app.RoleLogger))
	err = run(config("typo", wrong, app.RoleSave2DB))
	if err == nil {
		t.Fatal("a save2db worker with another store started")
	}
	for _, want := range []string{"is not the one the bus's images are kept in", "/imgpipe2", "/imgpipe ", "recorded by front", "--rebind-store"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	// Nothing was taken away: an upload is saved where the front reads.
	id := upload(t, front.URL, "width=40", fixtures.JPEG(80, 60, 301))
	waitOK(t, front.URL, id)
	waitSaved(t, front.URL, id)

	moved := config("mover", wrong, app.RoleSave2DB)
	moved.Store.Rebind = true
	if err := run(moved); err != nil {
		t.Fatalf("--rebind-store: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(front.URL + "/healthz")
		if err != nil {
			break // stopped
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the old store's process still running 30 s after the rebind")
		}
	}
	if err := front.Stop(); err == nil || !strings.Contains(err.Error(), "now kept in another store") {
		t.Fatalf("the old store's process ended with %v, want the rebind as its reason", err)
	}
	if err := run(config("front", right, app.RoleAPI)); err == nil || !strings.Contains(err.Error(), "recorded by mover") {
		t.Fatalf("the old store's process after a rebind: %v, want it refused", err)
	}
	if err := run(config("mover-again", wrong, app.RoleSave2DB)); err != nil {
		t.Fatalf("the new store's process after a rebind: %v", err)
	}
}

// TestDevFollowsItsStore: imgpipe dev's embedded bus has no port, so no
// other process can share it: given another store on the same data dir
// (--store, or a wiped store directory), dev moves its bus to it rather
// than refusing to start, and serves from it.
func TestDevFollowsItsStore(t *testing.T) {
	local := apptest.Config(t)
	mongo := local
	mongo.Store.URL = ferrettest.For(t)
	for i, cfg := range []app.Config{local, mongo, local} {
		r := apptest.Start(t, cfg)
		id := upload(t, r.URL, "width=30", fixtures.JPEG(60, 40, uint64(310+i)))
		waitOK(t, r.URL, id)
		waitSaved(t, r.URL, id)
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}
