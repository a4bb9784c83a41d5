package app_test

import (
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
	"github.com/imgpipe/imgpipe/model"
)

// TestTransformWorkersScaleOutAndIn adds and removes transform processes
// while a backlog is being worked off, as an operator scaling the fleet
// would: a worker started mid-backlog takes a share of it, and when the
// first worker is killed (SIGKILL: a crash, or a node taken away), the
// image it held comes back and the other finishes it. Every image ends
// done, each once.
func TestTransformWorkersScaleOutAndIn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts four processes")
	}
	bin := imgpipeBinary(t)
	_, common := backends(t)
	// One image at a time per worker, so that a backlog forms; what the
	// killed worker held comes back after the ack wait, kept short (and
	// above the transform timeout, as validation requires).
	t.Setenv("IMGPIPE_WORKERS_TRANSFORM_WORKERS", "1")
	t.Setenv("IMGPIPE_NATS_ACK_WAIT", "8s")
	t.Setenv("IMGPIPE_TRANSFORM_TIMEOUT", "6s")
	// About a tenth of a second each, and small enough for FerretDB.
	const spec = "width=1200&blur=4&format=webp&quality=50"
	front := startProcess(t, bin, "front", append([]string{"serve", "--roles=api,save2db,logger"}, common...)...)

	ids := make([]string, 30)
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			for i := c; i < len(ids); i += 4 {
				ids[i], errs[i] = uploadRetrying(front.url, spec, fixtures.JPEG(1600, 1200, uint64(900+i)))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	// The backlog is queued before any worker runs: with the first worker
	// taking images as they came, uploads slower than transforms (a store
	// slowed down, as under -race) left none for the second.
	first := startProcess(t, bin, "w1", append([]string{"worker", "--roles=transform"}, common...)...)
	apptest.Eventually(t, "the first worker to transform an image", func() bool { return transformed(t, first) > 0 })
	// Scale out: the new worker takes images the first has not reached.
	second := startProcess(t, bin, "w2", append([]string{"worker", "--roles=transform"}, common...)...)
	apptest.Eventually(t, "the added worker to transform an image", func() bool { return transformed(t, second) > 0 })
	// Scale in, the hard way, while the first worker is busy: images are
	// left for both.
	before := map[string]int{"w1": transformed(t, first), "w2": transformed(t, second)}
	if left := len(ids) - before["w1"] - before["w2"]; left < 2 {
		t.Fatalf("done by worker %v: %d of %d images left, too few to tell what the kill leaves behind", before, left, len(ids))
	}
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.done

	for _, id := range ids {
		res := apptest.Result(t, front.url, id, "")
		if res.Status != http.StatusOK {
			t.Fatalf("image %s: %d %.300s", id, res.Status, res.Body)
		}
		if format, img := apptest.Decode(t, res.Body); format != "webp" || img.Bounds().Dx() != 1200 || img.Bounds().Dy() != 900 {
			t.Fatalf("image %s: %s %v, want a 1200x900 webp", id, format, img.Bounds())
		}
	}
	// Every image done by one of the two, the second finishing what the
	// first left. An image is done twice only if the kill fell between
	// the first worker's outcome and its record (delivery is at least
	// once): then by the first, and again by the second.
	after := map[string]int{}
	var twice, held []string
	for _, id := range ids {
		waitEvents(t, front.url, id, model.EventTransformDone, model.EventSaved)
		var by []string
		began := false
		for _, e := range activity(t, front.url, id) {
			switch {
			case e.Role != "transform" || e.Instance != "w1" && e.Instance != "w2":
			case e.Event == model.EventTransformDone:
				by = append(by, e.Instance)
				after[e.Instance]++
			case e.Event == model.EventTransformStarted && e.Instance == "w1":
				began = true
			}
		}
		switch {
		case len(by) == 2 && by[0] == "w1" && by[1] == "w2":
			twice = append(twice, id)
		case len(by) != 1:
			t.Errorf("image %s done by %v, want one worker", id, by)
		case began && by[0] == "w2":
			held = append(held, id)
		}
	}
	t.Logf("done by worker: at the kill %v, in the end %v; held by the killed worker and finished by the other: %v; done by both: %v", before, after, held, twice)
	if len(twice) > 1 || after["w2"] <= before["w2"] {
		t.Errorf("done by worker %v, %v at the kill, %d images done twice: want the second worker to finish what was left, and at most the one in flight done twice", after, before, len(twice))
	}
	if err := second.stop(); err != nil {
		t.Errorf("the second worker on SIGTERM: %v", err)
	}
}

// transformed reads how many images a transform process has finished.
func transformed(t *testing.T, p *process) int {
	page := apptest.Get(t, p.url+"/metrics").Body
	return countSeries(string(page), `imgpipe_messages_handled_total{outcome="done",role="transform"}`)
}
