package app_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
	"github.com/imgpipe/imgpipe/internal/natstest"
	"github.com/imgpipe/imgpipe/model"
)

// TestPipelineSurvivesLosingANATSServer: every role on a three-server NATS
// cluster, every stream and bucket replicated three times, as a deployment
// beyond one machine runs. While images are in flight the server leading
// the transform queue goes away; every image accepted, before or after,
// still comes out transformed, saved and logged, and leaves nothing
// staged behind.
func TestPipelineSurvivesLosingANATSServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server cluster")
	}
	c := natstest.StartCluster(t, 3)
	cfg := apptest.Config(t)
	cfg.NATS.URL = c.URL()
	cfg.NATS.Replicas = 3
	r := apptest.Start(t, cfg)

	var ids []string
	accept := func(n int) {
		for range n {
			i := len(ids)
			ids = append(ids, uploadRetrying(t, r.URL, "width=200&format=png", fixtures.JPEG(640, 480, uint64(900+i))))
		}
	}
	accept(10)
	leader := c.StreamLeader(t, "IMGPIPE_TRANSFORM")
	t.Logf("stopping %s, the transform queue's leader", leader)
	ns := c.Server(leader)
	ns.Shutdown()
	ns.WaitForShutdown()
	accept(10)

	for _, id := range ids {
		res := apptest.Result(t, r.URL, id, "")
		if res.Status != http.StatusOK {
			t.Fatalf("image %s: %d %.300s", id, res.Status, res.Body)
		}
		if format, img := apptest.Decode(t, res.Body); format != "png" || img.Bounds().Dx() != 200 {
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

// uploadRetrying uploads until the API accepts: while the cluster elects
// new leaders it answers 503 with Retry-After, which a client honours.
func uploadRetrying(t *testing.T, base, spec string, data []byte) string {
	t.Helper()
	var id string
	apptest.Eventually(t, fmt.Sprintf("an upload of %d bytes to be accepted", len(data)), func() bool {
		res := apptest.Upload(t, base, spec, data)
		switch res.Status {
		case http.StatusAccepted:
			id, _ = res.JSON(t)["id"].(string)
			return true
		case http.StatusServiceUnavailable:
			return false
		}
		t.Fatalf("upload: %d %s", res.Status, res.Body)
		return false
	})
	return id
}
