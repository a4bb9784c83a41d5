package app_test

import (
	"bufio"
	"bytes"
	"fmt"
	"image/png"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/diskfull"
	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// TestUploadsKeepRoomForTheStore: while the data dir's disk has less free
// than data_dir_min_free_bytes, uploads are refused with a 503 that says
// why, before their bodies are read, after a client's mistakes are
// answered; what was accepted is still served, and uploads are taken
// again once there is room. The disk is a real tmpfs, really filled.
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
	// Refused before the body is read: the answer comes to a request
	// whose megabyte of body never arrives.
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /v1/images?width=64 HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000\r\n\r\n")
	if status, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.HasPrefix(status, "HTTP/1.1 503") {
		t.Errorf("an upload whose body is still to come: %q, %v; want a 503 at once", status, err)
	}
	// A client's mistake is still answered as one, not as a 503 to retry.
	if bad := apptest.Upload(t, r.URL, "width=abc", fixtures.JPEG(320, 240, 2)); bad.Status != http.StatusBadRequest {
		t.Errorf("a bad spec on a disk short of room: %d %s", bad.Status, bad.Body)
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
