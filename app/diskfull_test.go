package app_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/app"
	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/diskfull"
	"github.com/imgpipe/imgpipe/internal/ferrettest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
	"github.com/imgpipe/imgpipe/internal/natstest"
)

// TestFullDiskOutlasted: the disk under the bus fills up for real while
// images wait for a transform worker, and stays full for longer than the
// retry policy spans. A worker that takes an image then cannot write its
// status or its result; those writes are waited out, the image held, not
// tried again and failed. Stopped, the worker hands the images back at
// once. Once there is room again every image is transformed.
func TestFullDiskOutlasted(t *testing.T) {
	dir := diskfull.Tmpfs(t, 64<<20)
	quiet := slog.New(slog.DiscardHandler)
	e, err := natsbus.StartEmbeddedServer(natsbus.EmbeddedOptions{Dir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after every app has stopped.
	t.Cleanup(e.Shutdown)
	url := e.Server().ClientURL() // kept by a restart
	// A bus in process, as imgpipe dev has: its guard restarts the server
	// once there is room.
	guard, err := natsbus.ConnectEmbedded(t.Context(), natsbus.DefaultConfig(), e, "guard", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = guard.Close() })
	storeURL := ferrettest.For(t) // the processes' shared store
	config := func(instance string, roles ...string) app.Config {
		cfg := apptest.Config(t)
		cfg.Instance, cfg.Roles, cfg.NATS.URL, cfg.Store.URL = instance, roles, url, storeURL
		// Spent in well under the outage, if an outage spent attempts.
		cfg.NATS.Retry = bus.Retry{MaxDeliver: 2, Backoff: []time.Duration{100 * time.Millisecond}}
		return cfg
	}
	front := apptest.Start(t, config("front", app.RoleAPI, app.RoleSave2DB, app.RoleLogger))
	// The worker starts while there is room (it sets up its consumer),
	// and gets nothing until the disk is full.
	wcfg := config("worker", app.RoleTransform)
	wcfg.Workers.TransformWorkers = 3 // one per image, whatever the cores
	worker := apptest.Start(t, wcfg)
	resume := time.Now().Add(10 * time.Second)
	if _, err := natstest.JetStream(t, url).PauseConsumer(t.Context(), "IMGPIPE_TRANSFORM", "transform", resume); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		ids = append(ids, upload(t, front.URL, "width=64&format=png", fixtures.JPEG(320, 240, uint64(100+i))))
	}
	filler := diskfull.Fill(t, dir, 0)
	if time.Now().After(resume) {
		t.Fatal("three uploads took longer than the 10 s pause: the worker may have had them before the disk filled")
	}
	// The worker gets the images and holds them, waiting on the bus. A
	// full tmpfs still takes writes into the pages its files have begun:
	// an image whose few small writes all fit there goes through (once in
	// a full run of the suite), and is not waited for.
	apptest.Eventually(t, "the worker to wait out the outage", func() bool {
		done := 0
		for _, id := range ids {
			if apptest.Get(t, front.URL+"/v1/images/"+id).JSON(t)["status"] == "done" {
				done++
			}
		}
		held := fmt.Sprintf("imgpipe_transform_outage_waits %d\n", len(ids)-done)
		return done < len(ids) && bytes.Contains(apptest.Get(t, worker.URL+"/metrics").Body, []byte(held))
	})
	time.Sleep(10 * time.Second) // well past the retry policy
	// A worker stopped meanwhile hands its held images back at once,
	// rather than hold its drain to the deadline (30 s).
	begin := time.Now()
	if err := worker.Stop(); err != nil {
		t.Errorf("worker stopped during the outage: %v", err)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("the worker took %s to stop during the outage", took)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	apptest.Start(t, wcfg) // another worker, once there is room

	for _, id := range ids {
		res := apptest.Result(t, front.URL, id, "")
		if res.Status != http.StatusOK {
			t.Fatalf("result of %s after the outage: %d %.300s", id, res.Status, res.Body)
		}
		if format, img := apptest.Decode(t, res.Body); format != "png" || img.Bounds().Dx() != 64 || img.Bounds().Dy() != 48 {
			t.Errorf("result of %s: %s %v, want a 64x48 png", id, format, img.Bounds())
		}
		rec := apptest.Get(t, front.URL+"/v1/images/"+id).JSON(t)
		t.Logf("%s: %s after %v attempt(s)", id, rec["status"], rec["attempts"])
	}
	if metrics := apptest.Get(t, front.URL+"/metrics").Body; bytes.Contains(metrics, []byte(`outcome="failed",role="transform"`)) {
		t.Error("a transform failed")
	}
}
