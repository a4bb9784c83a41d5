package app_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// Uploads held in memory at once are bounded across requests: while slow
// uploads hold the budget, another is refused with 503, Retry-After and a
// message naming the setting, and the process stays up; once the slow ones
// end, uploads are accepted again.
func TestUploadBudget(t *testing.T) {
	cfg := apptest.Config(t)
	cfg.HTTP.MaxUploadBytes, cfg.HTTP.MaxRequestBytes, cfg.HTTP.MaxInflightUploadBytes = 1<<20, 1<<20, 5<<18

	// Two clients that declare large bodies, send part of them, and stall.
	// The budget is taken a quarter MiB at a time: once the server has read
	// what they sent, they hold three quarters and two, all of it.
	r := apptest.Start(t, cfg)
	var stalled []net.Conn
	for _, sent := range []int{600 << 10, 300 << 10} {
		conn, err := net.Dial("tcp", r.App.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := fmt.Fprintf(conn, "POST /v1/images HTTP/1.1\r\nHost: imgpipe\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", 1000<<10); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(make([]byte, sent)); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, conn)
	}
	// Until then an upload could take a share first, and a stalled one be
	// refused instead.
	waitFor(t, "the stalled uploads' bytes held", func() (apptest.Response, bool) {
		resp := apptest.Get(t, r.URL+"/metrics")
		return resp, strings.Contains(string(resp.Body), "\nimgpipe_upload_bytes_held 1.31072e+06\n")
	})
	seed := uint64(0)
	upload := func() apptest.Response {
		seed++
		return r.Upload(t, "width=10", fixtures.JPEG(32, 32, seed))
	}
	refused := waitFor(t, "an upload refused while the stalled ones hold the budget", func() (apptest.Response, bool) {
		resp := upload()
		return resp, resp.Status == http.StatusServiceUnavailable
	})
	if refused.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if e, _ := refused.JSON(t)["error"].(map[string]any); e["code"] != "busy" || e["message"] == "" {
		t.Errorf("refusal: %s", refused.Body)
	}

	// The stalled clients give up: their handlers return, and so do their
	// shares.
	for _, conn := range stalled {
		conn.Close()
	}
	waitFor(t, "the stalled uploads' bytes given back", func() (apptest.Response, bool) {
		resp := apptest.Get(t, r.URL+"/metrics")
		return resp, strings.Contains(string(resp.Body), "\nimgpipe_upload_bytes_held 0\n")
	})
	waitFor(t, "an upload accepted once the stalled ones are gone", func() (apptest.Response, bool) {
		resp := upload()
		return resp, resp.Status == http.StatusAccepted
	})
	if got := apptest.Get(t, r.URL+"/healthz"); got.Status != http.StatusOK {
		t.Fatalf("healthz: %d", got.Status)
	}
}

// waitFor calls try until it reports done, for up to 20 s.
func waitFor(t *testing.T, what string, try func() (apptest.Response, bool)) apptest.Response {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, done := try()
		if done {
			return resp
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s: last answer %d %s", what, resp.Status, resp.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
