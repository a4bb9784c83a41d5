package app_test

import (
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
	"github.com/imgpipe/imgpipe/model"
)

// TestNothingAcceptedIsLostOnCrash kills `imgpipe dev` with SIGKILL right
// after it accepted a burst of uploads (most not yet transformed, none yet
// persisted), starts it again on the same data dir, and requires every
// accepted image to come out done, persisted, with its whole timeline.
func TestNothingAcceptedIsLostOnCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := imgpipeBinary(t)
	data := filepath.Join(dir, "data")
	// One transformer and eight clients: the uploads outrun the work, so
	// the kill lands with most images queued.
	t.Setenv("IMGPIPE_WORKERS_TRANSFORM_WORKERS", "1")
	// What the dead process held comes back after the ack wait: keep it
	// short, but the timeout below it must leave a loaded CI machine time
	// for these images, or they fail (at 2s one did).
	t.Setenv("IMGPIPE_NATS_ACK_WAIT", "8s")
	t.Setenv("IMGPIPE_TRANSFORM_TIMEOUT", "6s") // below the ack wait, as validation requires
	p := startProcess(t, bin, "dev", "dev", "--data-dir", data)
	ids := make([]string, 40)
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for i := c; i < len(ids); i += 8 {
				ids[i], errs[i] = uploadRetrying(p.url, "width=1200&blur=4&format=png", fixtures.JPEG(1600, 1200, uint64(500+i)))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// What the process had finished when it died, for the log: the test
	// means something only when work was still in flight.
	metrics := string(apptest.Get(t, p.url+"/metrics").Body)
	t.Logf("at the kill: %d of %d transformed", countSeries(metrics, `imgpipe_messages_handled_total{outcome="done",role="transform"}`), len(ids))
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done

	t.Setenv("IMGPIPE_WORKERS_TRANSFORM_WORKERS", "2") // not the default two per core: contention makes timeouts
	p = startProcess(t, bin, "dev-again", "dev", "--data-dir", data)
	for _, id := range ids {
		res := apptest.Result(t, p.url, id, "")
		if res.Status != http.StatusOK {
			t.Fatalf("image %s after the crash: %d %s", id, res.Status, res.Body)
		}
		if _, img := apptest.Decode(t, res.Body); img.Bounds().Dx() != 1200 {
			t.Fatalf("image %s: width %d", id, img.Bounds().Dx())
		}
	}
	// Nor is any of their activity: each event was stored before what it
	// records was acknowledged (the upload's answer, a queue's ack).
	for _, id := range ids {
		waitEvents(t, p.url, id, model.EventAccepted, model.EventTransformDone, model.EventSaved)
	}
	if err := p.stop(); err != nil {
		t.Errorf("clean stop: %v", err)
	}
}

// countSeries reads one counter from a Prometheus text page (0 if absent).
func countSeries(page, series string) int {
	for line := range strings.SplitSeq(page, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return 0
}
