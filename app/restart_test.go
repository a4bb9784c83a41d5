package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/app"
	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/ferrettest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
	"github.com/imgpipe/imgpipe/model"
)

// What was processed before a restart is served after it, on both stores.
func TestRestartKeepsImages(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		cfg := apptest.Config(t)
		checkSurvivesRestart(t, cfg, cfg)
	})
	t.Run("mongo", func(t *testing.T) {
		uri, stop, err := ferrettest.Start(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		cfg := apptest.Config(t)
		cfg.Store.URL = uri
		// After the restart the bus is brand new (another data dir): every
		// answer must come from MongoDB, the store of record.
		after := apptest.Config(t)
		after.Store.URL = uri
		checkSurvivesRestart(t, cfg, after)
	})
}

func checkSurvivesRestart(t *testing.T, before, after app.Config) {
	r := apptest.Start(t, before)
	data := fixtures.JPEG(400, 300, 42)
	id := upload(t, r.URL, "width=100&format=png", data)
	result := waitOK(t, r.URL, id).Body
	waitSaved(t, r.URL, id)
	if err := r.Stop(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}

	r = apptest.Start(t, after)
	if got := apptest.Get(t, r.URL+"/v1/images/"+id+"/result"); got.Status != http.StatusOK || !bytes.Equal(got.Body, result) {
		t.Fatalf("result after restart: %d, identical=%v", got.Status, bytes.Equal(got.Body, result))
	}
	if got := apptest.Get(t, r.URL+"/v1/images/"+id+"/original"); !bytes.Equal(got.Body, data) {
		t.Fatalf("original after restart: %d, %d bytes", got.Status, len(got.Body))
	}
	if rec := apptest.Get(t, r.URL+"/v1/images/"+id).JSON(t); rec["status"] != "done" {
		t.Fatalf("record after restart: %v", rec)
	}
	// The same upload again is still recognised.
	if again := upload(t, r.URL, "width=100&format=png", data); again != id {
		t.Fatalf("re-upload after restart got id %s, want %s", again, id)
	}
}

// waitSaved waits until save2db has persisted the image (its "saved" event
// is in the activity log).
func waitSaved(t *testing.T, base, id string) {
	t.Helper()
	waitEvents(t, base, id, model.EventSaved)
}

// waitEvents waits until the image's activity holds every one of events.
func waitEvents(t *testing.T, base, id string, events ...string) {
	t.Helper()
	var seen []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		seen = seen[:0]
		for _, e := range activity(t, base, id) {
			seen = append(seen, e.Role+":"+e.Event)
		}
		missing := slices.DeleteFunc(slices.Clone(events), func(want string) bool {
			return slices.ContainsFunc(seen, func(s string) bool { return strings.HasSuffix(s, ":"+want) })
		})
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("image %s: events %v missing after 30s; the activity has %v", id, missing, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A second process on a data dir in use is refused at once, before it
// opens the embedded JetStream server on the first one's files, even with
// its store elsewhere; once the first stops, the data dir is free again.
func TestDataDirInUseIsRefused(t *testing.T) {
	cfg := apptest.Config(t)
	first := apptest.Start(t, cfg)
	for _, storeURL := range []string{"", "local://" + t.TempDir()} {
		second := cfg
		second.Store.URL = storeURL
		second.StartupTimeout = 20 * time.Second // bbolt's lock alone is waited for that long
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		start := time.Now()
		err := app.New(second, slog.New(slog.DiscardHandler)).Run(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "in use by another imgpipe process (pid ") {
			t.Fatalf("second process (store %q): %v", storeURL, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("refused after %s: it waited instead of refusing", took)
		}
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	again := apptest.Start(t, cfg)
	waitOK(t, again.URL, upload(t, again.URL, "width=20", fixtures.JPEG(64, 48, 5)))
}
