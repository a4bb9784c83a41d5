package app_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/imgpipe/imgpipe/app"
	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/ferrettest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
	"github.com/imgpipe/imgpipe/internal/natstest"
	"github.com/imgpipe/imgpipe/model"
)

// TestImageWhoseWorkersDieEndsFailed: an image whose every transform attempt
// ends without a verdict, because the workers holding it die (SIGKILL, OOM,
// a libvips segfault on a poison image), ends failed with its error and is
// answered 422, instead of staying "processing" in the queue for ever; and
// the transformer that records the failure does not run the engine on it.
func TestImageWhoseWorkersDieEndsFailed(t *testing.T) {
	const maxDeliver = 2
	front, config, id := workersDieOnEveryAttempt(t, maxDeliver, maxDeliver, true)
	worker := apptest.Start(t, config("worker-2", app.RoleTransform))
	res := apptest.Result(t, front.URL, id, "")
	if e, _ := res.JSON(t)["error"].(map[string]any); res.Status != http.StatusUnprocessableEntity || e["code"] != "workers_stopped" {
		t.Fatalf("result: %d %.300q, want 422 workers_stopped", res.Status, res.Body)
	}
	rec := apptest.Get(t, front.URL+"/v1/images/"+id).JSON(t)
	if msg, _ := rec["error"].(string); rec["status"] != "failed" || !strings.Contains(msg, "did not complete") ||
		rec["error_code"] != "workers_stopped" || rec["attempts"] != float64(maxDeliver) {
		t.Fatalf("record: %v, want failed after %d attempts, with the error", rec, maxDeliver)
	}

	// Recorded, not rendered: the worker counted a failure and ran no
	// transform.
	metrics := apptest.Get(t, worker.URL+"/metrics").Body
	if series := `imgpipe_messages_handled_total{outcome="failed",role="transform"} 1`; !bytes.Contains(metrics, []byte(series)) {
		t.Errorf("worker /metrics lacks %s", series)
	}
	if bytes.Contains(metrics, []byte("imgpipe_transform_seconds_count")) {
		t.Error("the worker ran the engine on an exhausted image")
	}
	waitSaved(t, front.URL, id) // persisted as failed
	// The worker's events come in its own batches, stored in any order
	// with save2db's: wait for the failure to be logged.
	seen := map[string]int{}
	apptest.Eventually(t, "transform.failed in the activity", func() bool {
		var events struct{ Events []struct{ Event string } }
		_ = json.Unmarshal(apptest.Get(t, front.URL+"/v1/images/"+id+"/activity").Body, &events)
		clear(seen)
		for _, e := range events.Events {
			seen[e.Event]++
		}
		return seen["transform.failed"] > 0
	})
	if seen["transform.failed"] != 1 || seen["transform.started"] != 0 {
		t.Errorf("activity %v: want transform.failed once and no transform.started", seen)
	}

	queueEmpties(t, config)
}

// TestImageNeverBegunByDyingWorkersIsTransformed: a process that dies takes
// with it the deliveries it had fetched but not begun, and each counts as
// an attempt. An image whose every delivery went that way (to processes a
// poison image beside it crashed, say) never had an attempt of its own:
// the delivery after the last one renders it instead of failing it.
func TestImageNeverBegunByDyingWorkersIsTransformed(t *testing.T) {
	const maxDeliver = 2
	front, config, id := workersDieOnEveryAttempt(t, maxDeliver, maxDeliver, false)
	apptest.Start(t, config("worker-2", app.RoleTransform))
	res := apptest.Result(t, front.URL, id, "")
	if res.Status != http.StatusOK {
		t.Fatalf("result: %d %.300q, want 200", res.Status, res.Body)
	}
	if format, img := apptest.Decode(t, res.Body); format != "png" || img.Bounds().Dx() != 100 {
		t.Fatalf("result: %s %v, want a png 100 wide", format, img.Bounds())
	}
	if rec := apptest.Get(t, front.URL+"/v1/images/"+id).JSON(t); rec["attempts"] != float64(maxDeliver+1) {
		t.Fatalf("record: %v, want done at attempt %d", rec, maxDeliver+1)
	}
	waitEvents(t, front.URL, id, model.EventTransformDone, model.EventSaved)
	queueEmpties(t, config)
}

// TestNeverBegunImageFailsOnTheFinalDelivery: the delivery that renders a
// never-begun image is not the final one: if its worker died too, nothing
// would come after it to record the outcome. When every delivery but the
// final one was lost to dying processes, the final one records the failure
// without rendering.
func TestNeverBegunImageFailsOnTheFinalDelivery(t *testing.T) {
	const maxDeliver = 1
	// The server's deliveries: the attempts, then up to three verdicts.
	front, config, id := workersDieOnEveryAttempt(t, maxDeliver, maxDeliver+2, false)
	worker := apptest.Start(t, config("worker-2", app.RoleTransform))
	if res := apptest.Result(t, front.URL, id, ""); res.Status != http.StatusUnprocessableEntity {
		t.Fatalf("result: %d %.300q, want 422", res.Status, res.Body)
	}
	if bytes.Contains(apptest.Get(t, worker.URL+"/metrics").Body, []byte("imgpipe_transform_seconds_count")) {
		t.Error("the worker ran the engine on the final delivery")
	}
	queueEmpties(t, config)
}

// queueEmpties waits until nothing is left in the transform queue.
func queueEmpties(t *testing.T, config func(string, ...string) app.Config) {
	t.Helper()
	js := natstest.JetStream(t, config("").NATS.URL)
	apptest.Eventually(t, "the transform queue to empty", func() bool {
		s, err := js.Stream(t.Context(), "IMGPIPE_TRANSFORM")
		if err != nil {
			return false
		}
		info, err := s.Info(t.Context())
		return err == nil && info.State.Msgs == 0
	})
}

// workersDieOnEveryAttempt uploads an image through a front process
// (api, save2db, logger), with maxDeliver attempts, and lets dying workers
// take its first deliveries deliveries and answer none; began says whether
// each wrote its attempt in the status record first, as a real worker does
// when it begins, or died with the message only fetched. It returns the
// front, the config of a process on the same server, and the image's id:
// the next delivery goes to the next transform role started.
//
// The dying workers are the test itself, as a plain JetStream client on the
// transform durable: it pulls each attempt and never answers, which is all
// the server sees of a killed process, but at moments the test chooses. A
// real worker killed mid-image (as in crash_test.go) would race the kill
// against the transform and could not be made to die on every attempt;
// this is deterministic.
func workersDieOnEveryAttempt(t *testing.T, maxDeliver, deliveries int, began bool) (*apptest.Running, func(string, ...string) app.Config, string) {
	t.Helper()
	ns, err := natsbus.StartEmbeddedWith(natsbus.EmbeddedOptions{Dir: filepath.Join(t.TempDir(), "nats"), Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after every app has stopped.
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	storeURL := ferrettest.For(t) // the processes' shared store
	config := func(instance string, roles ...string) app.Config {
		cfg := apptest.Config(t)
		cfg.Instance = instance
		cfg.Roles = roles
		cfg.NATS.URL, cfg.Store.URL = ns.ClientURL(), storeURL
		// A dead worker's attempt comes back after the ack wait: keep it short.
		cfg.NATS.AckWait = 2 * time.Second
		// Below the ack wait, as validation requires, and enough for a
		// small image on a loaded machine: the delivery that renders the
		// prefetched image is its last attempt.
		cfg.Transform.Timeout = 1500 * time.Millisecond
		cfg.NATS.Retry.MaxDeliver = maxDeliver
		return cfg
	}
	front := apptest.Start(t, config("front", app.RoleAPI, app.RoleSave2DB, app.RoleLogger))
	// A transform worker comes and goes: the durable consumer exists, as
	// the app configures it, with nobody pulling.
	if err := apptest.Start(t, config("worker-1", app.RoleTransform)).Stop(); err != nil {
		t.Fatal(err)
	}

	id := upload(t, front.URL, "width=100&format=png", fixtures.JPEG(320, 240, 91))

	// The dying workers: take every attempt, answer none. They write the
	// status record through the bus, as the transform role does.
	busCfg := natsbus.DefaultConfig()
	busCfg.URL = ns.ClientURL()
	b, err := natsbus.Connect(t.Context(), busCfg, nil, "dying-workers", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	js := natstest.JetStream(t, ns.ClientURL())
	cons, err := js.Consumer(t.Context(), "IMGPIPE_TRANSFORM", "transform")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for attempt := 0; attempt < deliveries; {
		if time.Now().After(deadline) {
			t.Fatalf("delivery %d of %d taken within 30s", attempt, deliveries)
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for msg := range batch.Messages() {
			md, err := msg.Metadata()
			if err != nil || !strings.HasSuffix(msg.Subject(), "."+id) {
				t.Fatalf("fetched %s (%v), want the transform of %s", msg.Subject(), err, id)
			}
			attempt = int(md.NumDelivered)
			if began {
				rec, err := b.Status().Get(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				rec.Status, rec.Attempts = model.StatusProcessing, attempt
				if err := b.Status().Put(t.Context(), rec); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if rec := apptest.Get(t, front.URL+"/v1/images/"+id).JSON(t); rec["status"] == "failed" || rec["status"] == "done" {
		t.Fatalf("final before any worker answered: %v", rec)
	}
	return front, config, id
}
