// Package apptest starts a real imgpipe App in the test process (embedded
// NATS, real libvips, a real store) and talks to it over HTTP, as a client
// would.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/app"
)

// Running is a started App.
type Running struct {
	URL    string
	App    *app.App
	cancel context.CancelFunc
	done   chan error
}

// Config is the base test config: every role, embedded NATS, the local
// store in a fresh directory, a random port.
func Config(t testing.TB) app.Config {
	cfg := app.DefaultConfig()
	cfg.Embedded = true
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Instance = t.Name()
	return cfg
}

// Start runs cfg until the test ends (or Stop).
func Start(t testing.TB, cfg app.Config) *Running {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("IMGPIPE_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	a := app.New(cfg, log)
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{App: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-r.done:
		cancel()
		t.Fatalf("app did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("app did not start within 60s")
	}
	r.URL = "http://" + a.Addr().String()
	t.Cleanup(func() { _ = r.Stop() })
	return r
}

// Stop drains and closes the App, returning Run's error. Safe to call twice.
func (r *Running) Stop() error {
	r.cancel()
	err, ok := <-r.done
	if ok {
		close(r.done)
	}
	return err
}

// Response is a decoded HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not JSON (status %d): %v: %.200q", r.Status, err, r.Body)
	}
	return m
}

// Do sends a request and reads the whole answer.
func Do(t testing.TB, method, url, contentType string, body []byte) Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Get is Do for GET.
func Get(t testing.TB, url string) Response { return Do(t, http.MethodGet, url, "", nil) }

// Multipart builds a multipart body with one file part per file under field.
func Multipart(t testing.TB, field string, files map[string][]byte) (contentType string, body []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for name, data := range files {
		part, err := w.CreateFormFile(field, name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = part.Write(data)
	}
	_ = w.Close()
	return w.FormDataContentType(), b.Bytes()
}

// Upload posts raw bytes to /v1/images?spec and returns the answer.
func (r *Running) Upload(t testing.TB, spec string, data []byte) Response {
	t.Helper()
	return Upload(t, r.URL, spec, data)
}

// Upload posts raw bytes to base/v1/images?spec.
func Upload(t testing.TB, base, spec string, data []byte) Response {
	t.Helper()
	u := base + "/v1/images"
	if spec != "" {
		u += "?" + spec
	}
	return Do(t, http.MethodPost, u, "application/octet-stream", data)
}

// Result long-polls the result of id until it is final and returns it. A
// 503 with Retry-After (the bus electing a leader, say) is asked again, as
// a client would, a little sooner than the header says.
func Result(t testing.TB, base, id, query string) Response {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp := Get(t, base+"/v1/images/"+id+"/result?wait=10s"+query)
		retry := resp.Status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != ""
		if !retry && resp.Status != http.StatusAccepted || time.Now().After(deadline) {
			return resp
		}
		if retry {
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// Eventually polls cond every 50 ms until it holds or 30 s pass.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
