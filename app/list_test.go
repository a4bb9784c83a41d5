package app_test

import (
	"encoding/json"
	"log/slog"
	"maps"
	"path/filepath"
	"testing"

	"github.com/imgpipe/imgpipe/app"
	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
	"github.com/imgpipe/imgpipe/model"
)

// TestListShowsLiveStatus: the store holds an image as queued until it
// ends; the listing shows and filters it by its live state, as the status
// table has it. With no transform worker, one image is marked processing
// as a worker would mark it, the other stays queued.
func TestListShowsLiveStatus(t *testing.T) {
	e, err := natsbus.StartEmbeddedServer(natsbus.EmbeddedOptions{Dir: filepath.Join(t.TempDir(), "nats"), Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	cfg := apptest.Config(t)
	cfg.Roles, cfg.NATS.URL = []string{app.RoleAPI, app.RoleSave2DB, app.RoleLogger}, e.Server().ClientURL()
	front := apptest.Start(t, cfg)
	busy := upload(t, front.URL, "width=50", fixtures.JPEG(64, 48, 201))
	waiting := upload(t, front.URL, "width=50", fixtures.JPEG(64, 48, 202))
	list := func(query string) map[string]string {
		var body struct{ Images []struct{ ID, Status string } }
		if err := json.Unmarshal(apptest.Get(t, front.URL+"/v1/images"+query).Body, &body); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, im := range body.Images {
			out[im.ID] = im.Status
		}
		return out
	}
	apptest.Eventually(t, "both images stored", func() bool { return len(list("")) == 2 })

	busCfg := natsbus.DefaultConfig()
	busCfg.URL = e.Server().ClientURL()
	b, err := natsbus.Connect(t.Context(), busCfg, nil, "worker", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	img, err := b.Status().Get(t.Context(), busy)
	if err != nil {
		t.Fatal(err)
	}
	img.Status, img.Attempts = model.StatusProcessing, 1
	if err := b.Status().Put(t.Context(), img); err != nil {
		t.Fatal(err)
	}

	for query, want := range map[string]map[string]string{
		"":                   {busy: "processing", waiting: "queued"},
		"?status=processing": {busy: "processing"},
		"?status=queued":     {waiting: "queued"},
		"?status=done":       {},
	} {
		if got := list(query); !maps.Equal(got, want) {
			t.Errorf("GET /v1/images%s: %v, want %v", query, got, want)
		}
	}

	// Ended while save2db lags (here it has no save message at all): shown
	// as it ended, with its result, not as queued.
	img, err = b.Status().Get(t.Context(), waiting)
	if err != nil {
		t.Fatal(err)
	}
	img.Status, img.Attempts = model.StatusDone, 1
	img.Results = []model.Result{{Variant: model.DefaultVariant, Info: model.Info{Format: "jpeg", Width: 50, Height: 38, Size: 900}}}
	if err := b.Status().Put(t.Context(), img); err != nil {
		t.Fatal(err)
	}
	for query, want := range map[string]map[string]string{
		"":               {busy: "processing", waiting: "done"},
		"?status=queued": {},
		"?status=done":   {}, // the store's pages: once save2db has stored it
	} {
		if got := list(query); !maps.Equal(got, want) {
			t.Errorf("after the end: GET /v1/images%s: %v, want %v", query, got, want)
		}
	}
	var page struct {
		Images []struct {
			ID      string
			Results []struct{ Width int }
		}
	}
	if err := json.Unmarshal(apptest.Get(t, front.URL+"/v1/images").Body, &page); err != nil {
		t.Fatal(err)
	}
	for _, im := range page.Images {
		if im.ID == waiting && (len(im.Results) != 1 || im.Results[0].Width != 50) {
			t.Errorf("the ended image lists results %v, want its one result", im.Results)
		}
	}
}
