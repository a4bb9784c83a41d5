package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func uiServer(t *testing.T) *echo.Echo {
	t.Helper()
	e := echo.New()
	MountUI(e)
	return e
}

func uiGet(e *echo.Echo, method, target string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func TestUIIndex(t *testing.T) {
	e := uiServer(t)
	for _, p := range []string{"/", "/index.html"} {
		rec := uiGet(e, http.MethodGet, p, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", p, rec.Code)
		}
		h := rec.Header()
		if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
		if cc := h.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", p, cc)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", p, csp)
		}
		if h.Get("ETag") == "" {
			t.Errorf("GET %s: headers %v", p, h)
		}
		body := rec.Body.String()
		for _, want := range []string{`id="file-input"`, `id="upload-button"`, `id="uploads"`, `id="recent-list"`} {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s: page lacks %s", p, want)
			}
		}
	}

	// A HEAD gets the headers only.
	rec := uiGet(e, http.MethodHead, "/", nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("HEAD /: %d %v", rec.Code, rec.Header())
	}

	// Revalidation.
	etag := uiGet(e, http.MethodGet, "/", nil).Header().Get("ETag")
	rec = uiGet(e, http.MethodGet, "/", map[string]string{"If-None-Match": etag})
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("GET / If-None-Match %s: %d, %d bytes", etag, rec.Code, rec.Body.Len())
	}
}

// Every asset the page links to exists, is versioned with its content hash,
// and is served immutable under that version only.
func TestUIAssetsVersionedAndTyped(t *testing.T) {
	e := uiServer(t)
	page := uiGet(e, http.MethodGet, "/", nil).Body.String()
	links := regexp.MustCompile(`"/ui/([^"?]+)\?v=([0-9a-f]{16})"`).FindAllStringSubmatch(page, -1)
	want := map[string]string{
		"app.js":      "text/javascript; charset=utf-8",
		"style.css":   "text/css; charset=utf-8",
		"favicon.svg": "image/svg+xml",
	}
	seen := map[string]bool{}
	for _, l := range links {
		name, version := l[1], l[2]
		seen[name] = true
		rec := uiGet(e, http.MethodGet, "/ui/"+name+"?v="+version, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /ui/%s: %d", name, rec.Code)
		}
		if ct, ok := want[name]; ok && rec.Header().Get("Content-Type") != ct {
			t.Errorf("%s: Content-Type %q, want %q", name, rec.Header().Get("Content-Type"), ct)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s?v=%s: Cache-Control %q", name, version, cc)
		}
		if rec.Body.Len() == 0 {
			t.Errorf("%s: empty", name)
		}
		// Unversioned or with a stale version: revalidate every time.
		for _, q := range []string{"", "?v=0000000000000000"} {
			if cc := uiGet(e, http.MethodGet, "/ui/"+name+q, nil).Header().Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("/ui/%s%s: Cache-Control %q, want no-cache", name, q, cc)
			}
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("index.html does not link %s with a version (links: %v)", name, links)
		}
	}
}

func TestUIGzipAndETag(t *testing.T) {
	e := uiServer(t)
	plain := uiGet(e, http.MethodGet, "/ui/app.js", nil)
	if plain.Header().Get("Content-Encoding") != "" {
		t.Fatalf("gzip sent to a client that did not ask: %v", plain.Header())
	}
	zipped := uiGet(e, http.MethodGet, "/ui/app.js", map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	if zipped.Header().Get("Content-Encoding") != "gzip" || !strings.Contains(zipped.Header().Get("Vary"), "Accept-Encoding") {
		t.Fatalf("no gzip: %v", zipped.Header())
	}
	if zipped.Header().Get("ETag") == plain.Header().Get("ETag") {
		t.Errorf("gzip and identity share the ETag %s", plain.Header().Get("ETag"))
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unzipped, plain.Body.Bytes()) {
		t.Error("gzip body differs from the plain one")
	}
	if rec := uiGet(e, http.MethodGet, "/ui/app.js", map[string]string{"Accept-Encoding": "gzip;q=0"}); rec.Header().Get("Content-Encoding") != "" {
		t.Error("gzip sent despite q=0")
	}

	for _, tc := range []struct {
		enc, etag string
	}{
		{"", plain.Header().Get("ETag")},
		{"gzip", zipped.Header().Get("ETag")},
		{"", "W/" + plain.Header().Get("ETag")},
		{"", `"other", ` + plain.Header().Get("ETag")},
	} {
		rec := uiGet(e, http.MethodGet, "/ui/app.js", map[string]string{"Accept-Encoding": tc.enc, "If-None-Match": tc.etag})
		if rec.Code != http.StatusNotModified {
			t.Errorf("If-None-Match %s (encoding %q): %d, want 304", tc.etag, tc.enc, rec.Code)
		}
	}
	if rec := uiGet(e, http.MethodGet, "/ui/app.js", map[string]string{"If-None-Match": `"stale"`}); rec.Code != http.StatusOK {
		t.Errorf("stale If-None-Match: %d", rec.Code)
	}
}

func TestUINotFound(t *testing.T) {
	e := uiServer(t)
	for _, p := range []string{"/ui/", "/ui/missing.js", "/ui/index.html", "/ui/../ui.go", "/ui/%2e%2e/ui.go", "/ui/ui/app.js"} {
		if rec := uiGet(e, http.MethodGet, p, nil); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"":                   false,
		"gzip":               true,
		"GZIP":               true,
		"deflate, gzip":      true,
		"gzip;q=0":           false,
		"gzip; q=0.000":      false,
		"gzip;q=0.5":         true,
		"br":                 false,
		"x-gzip":             false,
		"identity, *;q=0.1":  false,
		"deflate,gzip;q=1.0": true,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}
