package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

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
// store for good, a copy of the first here: then a running process of the
// old store stops by itself, and is refused when it starts again.
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
	// Refused before anything was made in it: no database to drop.
	if names := databases(t, right); slices.Contains(names, dbName(wrong)) || !slices.Contains(names, dbName(right)) {
		t.Errorf("databases after the refusal: %v; want %s and not %s", names, dbName(right), dbName(wrong))
	}
	// Nothing was taken away: an upload is saved where the front reads.
	id := upload(t, front.URL, "width=40", fixtures.JPEG(80, 60, 301))
	waitOK(t, front.URL, id)
	waitSaved(t, front.URL, id)

	// The images are moved to a copy of the store (a restored dump keeps
	// its identity), and the bus with them: named by the identity the
	// refusal gave, which makes the rebind a one-off.
	_, rest, _ := strings.Cut(err.Error(), "--rebind-store=")
	frontID := strings.Fields(rest + " ")[0]
	copied := right + "3"
	copyIdentity(t, right, copied)
	moved := config("mover", copied, app.RoleSave2DB)
	moved.Store.Rebind = frontID
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
	// Left set, the rebind does nothing more: the new store's processes
	// start, another store's are refused all the same.
	if err := run(moved); err != nil {
		t.Fatalf("the new store's process after the rebind, the setting left on: %v", err)
	}
	stale := config("typo", wrong, app.RoleSave2DB)
	stale.Store.Rebind = frontID
	if err := run(stale); err == nil || !strings.Contains(err.Error(), "nothing moved") {
		t.Fatalf("another store's process with the spent rebind: %v, want it refused", err)
	}
	if names := databases(t, right); slices.Contains(names, dbName(wrong)) {
		t.Errorf("databases after the refusals: %v; want no %s", names, dbName(wrong))
	}
}

// copyIdentity gives the database at to the identity of the one at from,
// as restoring a dump of it would.
func copyIdentity(t *testing.T, from, to string) {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(from))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	src, dst := client.Database(dbName(from)).Collection("meta"), client.Database(dbName(to)).Collection("meta")
	var doc bson.M
	if err := src.FindOne(t.Context(), bson.D{{Key: "_id", Value: "identity"}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.InsertOne(t.Context(), doc); err != nil {
		t.Fatal(err)
	}
}

func dbName(uri string) string { return uri[strings.LastIndex(uri, "/")+1:] }

// databases lists the databases of the server at uri.
func databases(t *testing.T, uri string) []string {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	names, err := client.ListDatabaseNames(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestDevFollowsItsStore: imgpipe dev's embedded bus has no port, so no
// other process can share it: given another store on the same data dir
// (--store, or a wiped store directory), dev moves its bus to it rather
// than refusing to start, and serves from it. The same image, uploaded in
// each, is served each time: the status table, emptied by the move, does
// not answer for an image the store lacks.
func TestDevFollowsItsStore(t *testing.T) {
	local := apptest.Config(t)
	other := local
	other.Store.URL = ferrettest.For(t)
	for _, cfg := range []app.Config{local, other, local} {
		r := apptest.Start(t, cfg)
		id := upload(t, r.URL, "width=30", fixtures.JPEG(60, 40, 310))
		waitOK(t, r.URL, id)
		waitSaved(t, r.URL, id)
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}
