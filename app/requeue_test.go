package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// timesOutSpec is a spec whose render a 1 ms transform.timeout always
// stops: PNG is encoded strip by strip, each pulled under the kill flag.
// The default spec (WebP, which compresses the whole frame at once) is
// not: an 800x600 JPEG to WebP rendered despite a 1 ms timeout in 2 to 6%
// of tries alone, and 10 to 16% four at a time on two cores, so an image
// "failed by the timeout" sometimes ended done instead.
const timesOutSpec = "format=png"

// TestRequeuedRunAlwaysEnds: an image failed for a reason of the moment
// (every render runs out of time) and uploaded again as soon as its
// failure shows, as the UI's Try again does (before save2db has stored the
// failure), gets a second run that ends, failed again, within seconds:
// many images, several at once. IMGPIPE_REQUEUE_SPEC replaces the spec
// ("default" for none, as TestBrowserRetriesAFailedImage once uploaded).
func TestRequeuedRunAlwaysEnds(t *testing.T) {
	images, parallel := 40, 4
	spec := timesOutSpec
	if s, ok := os.LookupEnv("IMGPIPE_REQUEUE_SPEC"); ok {
		spec = s
		if s == "default" {
			spec = ""
		}
	}
	const bound = 20 * time.Second // a run here takes well under a second
	cfg := apptest.Config(t)
	cfg.Transform.Timeout = time.Millisecond
	cfg.NATS.Retry.MaxDeliver = 2
	cfg.NATS.Retry.Backoff = []time.Duration{50 * time.Millisecond}
	base := apptest.Start(t, cfg).URL

	// Plain HTTP: apptest's helpers end the test, which other goroutines
	// than the test's may not do.
	getJSON := func(path string) (map[string]any, string, error) {
		resp, err := http.Get(base + path)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		var m map[string]any
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		return m, string(b), err
	}
	upload := func(data []byte) (map[string]any, error) {
		resp, err := http.Post(base+"/v1/images?"+spec, "image/jpeg", bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &m) != nil {
			return nil, fmt.Errorf("upload: %d %s", resp.StatusCode, b)
		}
		return m, nil
	}
	// ended waits for run retries of id to end, done or failed, and
	// returns its record.
	ended := func(id string, retries float64) (map[string]any, error) {
		for deadline := time.Now().Add(bound); ; time.Sleep(20 * time.Millisecond) {
			rec, body, err := getJSON("/v1/images/" + id)
			if err == nil {
				r, _ := rec["retries"].(float64)
				if r == retries && (rec["status"] == "done" || rec["status"] == "failed") {
					return rec, nil
				}
			}
			if time.Now().After(deadline) {
				_, act, _ := getJSON("/v1/images/" + id + "/activity")
				return nil, fmt.Errorf("run %v of %s not ended after %s (%v)\nrecord: %s\nactivity: %s", retries, id, bound, err, body, act)
			}
		}
	}
	one := func(i int) error {
		body, err := upload(fixtures.JPEG(800, 600, uint64(i)+1))
		if err != nil {
			return err
		}
		id, _ := body["id"].(string)
		rec, err := ended(id, 0)
		if err != nil {
			return err
		}
		if rec["status"] != "failed" || rec["error_code"] != "timeout" {
			return fmt.Errorf("first run of %s ended %v (%v), want failed by the timeout", id, rec["status"], rec["error_code"])
		}
		body, err = upload(fixtures.JPEG(800, 600, uint64(i)+1))
		if err != nil {
			return err
		}
		if body["id"] != id || body["retries"] != float64(1) {
			return fmt.Errorf("upload again of %s: %v, want it queued for a second run", id, body)
		}
		if rec, err = ended(id, 1); err != nil {
			return err
		}
		if rec["status"] != "failed" || rec["error_code"] != "timeout" || rec["attempts"] != float64(2) {
			return fmt.Errorf("second run of %s ended %v (%v) after %v attempts, want failed by the timeout after 2", id, rec["status"], rec["error_code"], rec["attempts"])
		}
		return nil
	}

	work := make(chan int)
	errs := make(chan error, images)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for i := range work {
				if err := one(i); err != nil {
					errs <- fmt.Errorf("image %d: %w", i, err)
				}
			}
		})
	}
	for i := range images {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
