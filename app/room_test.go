package app_test

import (
	"bytes"
	"image/png"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/diskfull"
	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// TestUploadsKeepRoomForTheStore: while the data dir's disk has less free
// than data_dir_min_free_bytes, uploads are refused with a 503 that says
// why, before their bodies are read; what was accepted is still served,
// and uploads are taken again once there is room. The disk is a real
// tmpfs, really filled.
func TestUploadsKeepRoomForTheStore(t *testing.T) {
	dir := diskfull.Tmpfs(t, 128<<20)
	cfg := apptest.Config(t)
	cfg.DataDir, cfg.DataDirMinFree = dir, 64<<20
	r := apptest.Start(t, cfg)
	first := upload(t, r.URL, "width=64&format=png", fixtures.JPEG(320, 240, 1))

	filler := diskfull.Fill(t, dir, 48<<20)
	refused := waitFor(t, "refusal", func() (apptest.Response, bool) {
		resp := apptest.Upload(t, r.URL, "width=64&format=png", fixtures.JPEG(320, 240, 2))
		return resp, resp.Status != http.StatusAccepted
	})
	body := refused.JSON(t)
	e, _ := body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	if refused.Status != http.StatusServiceUnavailable || e["code"] != "disk_low" || !strings.Contains(msg, "data_dir_min_free_bytes") {
		t.Fatalf("upload on a disk short of room: %d %s", refused.Status, refused.Body)
	}
	if refused.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After on the refusal")
	}
	ct, form := apptest.Multipart(t, "image", map[string][]byte{"a.jpg": fixtures.JPEG(320, 240, 3)})
	if legacy := apptest.Do(t, http.MethodPost, r.URL+"/image", ct, form); legacy.Status != http.StatusServiceUnavailable {
		t.Errorf("legacy upload on a disk short of room: %d %s", legacy.Status, legacy.Body)
	}
	// What was accepted is served all the same.
	res := waitOK(t, r.URL, first)
	img, err := png.Decode(bytes.NewReader(res.Body))
	if err != nil {
		t.Fatalf("result: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 48 {
		t.Errorf("result %dx%d, want 64x48", b.Dx(), b.Dy())
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "uploads taken again", func() (apptest.Response, bool) {
		resp := apptest.Upload(t, r.URL, "width=64&format=png", fixtures.JPEG(320, 240, 2))
		return resp, resp.Status == http.StatusAccepted
	})
}
