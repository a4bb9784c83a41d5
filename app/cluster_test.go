package app_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
	"github.com/imgpipe/imgpipe/internal/natstest"
	"github.com/imgpipe/imgpipe/model"
)

// TestPipelineSurvivesLosingANATSServer: every role on a three-server NATS
// cluster, every stream and bucket replicated three times, as a deployment
// beyond one machine runs. While images are in flight the server the
// process is connected to goes away; every image accepted, before or after,
// still comes out transformed, saved and logged, and leaves nothing
// staged behind. The server goes away twice over: shut down (in process,
// closing its connections and its files), and killed outright (a process
// of its own, SIGKILL), as a crash leaves it.
func TestPipelineSurvivesLosingANATSServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three-server clusters")
	}
	t.Run("shutdown", func(t *testing.T) {
		c := natstest.StartCluster(t, 3)
		survivesLosingAServer(t, c, func(name string) {
			ns := c.Server(name)
			ns.Shutdown()
			ns.WaitForShutdown()
		})
	})
	t.Run("sigkill", func(t *testing.T) {
		p := natstest.StartProcs(t, 3)
		survivesLosingAServer(t, p, func(name string) { p.Kill(t, name) })
	})
}

// natsCluster is what survivesLosingAServer reads of a cluster, in process
// or not.
type natsCluster interface {
	URL() string
	Serving(testing.TB) string
	StreamLeader(testing.TB, string) string
	Messages(testing.TB, string) uint64
}

func survivesLosingAServer(t *testing.T, c natsCluster, lose func(name string)) {
	cfg := apptest.Config(t)
	cfg.NATS.URL = c.URL()
	cfg.NATS.Replicas = 3
	// A delivery in flight when the server goes comes back only after the
	// ack wait, shut down or killed alike (the shutdown closes the
	// connection it was on; a run once lost a logger batch that way): keep
	// it well inside the waits below. The transform timeout must stay
	// under it (validation).
	cfg.NATS.AckWait, cfg.Transform.Timeout = 15*time.Second, 10*time.Second
	// One transformer and images that take it a while: the loss lands with
	// most of the first ten still queued or in work.
	cfg.Workers.TransformWorkers = 1
	r := apptest.Start(t, cfg)

	// Made first and uploaded at once, so that the uploads outrun the work.
	images := make([][]byte, 20)
	for i := range images {
		images[i] = fixtures.JPEG(1600, 1200, uint64(900+i))
	}
	ids := make([]string, len(images))
	accept := func(from, to int) {
		t.Helper()
		errs := make([]error, len(images))
		var wg sync.WaitGroup
		for i := from; i < to; i++ {
			wg.Go(func() { ids[i], errs[i] = uploadRetrying(r.URL, "width=800&blur=2&format=png", images[i]) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	accept(0, 10)
	// The server the process is connected to: its connection fails over,
	// publishes awaiting their acks are failed back to it, and the streams
	// that server leads elect new leaders.
	serving := c.Serving(t)
	var led []string
	for _, s := range []string{"IMGPIPE_TRANSFORM", "IMGPIPE_SAVE", "IMGPIPE_ACTIVITY", "IMGPIPE_STAGE", "KV_imgpipe_status"} {
		if c.StreamLeader(t, s) == serving {
			led = append(led, s)
		}
	}
	t.Logf("losing %s, which leads %v, with %s", serving, led, progress(t, r.URL, ids[:10]))
	lose(serving)
	accept(10, 20)

	for _, id := range ids {
		res := apptest.Result(t, r.URL, id, "")
		if res.Status != http.StatusOK {
			t.Fatalf("image %s: %d %.300s", id, res.Status, res.Body)
		}
		if format, img := apptest.Decode(t, res.Body); format != "png" || img.Bounds().Dx() != 800 {
			t.Fatalf("image %s: %s %v", id, format, img.Bounds())
		}
	}
	for _, id := range ids {
		waitEvents(t, r.URL, id, model.EventAccepted, model.EventTransformDone, model.EventSaved)
	}
	// Nothing is left staged: a delete the election refused was retried.
	apptest.Eventually(t, "the stage to empty", func() bool {
		return c.Messages(t, "IMGPIPE_STAGE") == 0
	})
}

// progress tells how many of ids are done.
func progress(t *testing.T, base string, ids []string) string {
	done := 0
	for _, id := range ids {
		if apptest.Get(t, base+"/v1/images/"+id).JSON(t)["status"] == "done" {
			done++
		}
	}
	return fmt.Sprintf("%d of %d images done", done, len(ids))
}

// uploadRetrying uploads until the API accepts: while the cluster elects
// new leaders it answers 503 with Retry-After, which a client honours. It
// runs on goroutines of its own, so it reports instead of failing the test.
func uploadRetrying(base, spec string, data []byte) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Post(base+"/v1/images?"+spec, "application/octet-stream", bytes.NewReader(data))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusAccepted:
				var v struct{ ID string }
				err := json.Unmarshal(body, &v)
				return v.ID, err
			case http.StatusServiceUnavailable:
				err = fmt.Errorf("503 %s", body)
			default:
				return "", fmt.Errorf("upload: %d %s", resp.StatusCode, body)
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("upload not accepted within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
