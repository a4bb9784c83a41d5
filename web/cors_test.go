package web

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/imgpipe/imgpipe/roles"
	"github.com/imgpipe/imgpipe/transform"
)

// corsServer mounts the API routes with origins allowed, on pipe. No
// request here reaches the bus or the store: preflights are answered
// before routing, and the other requests are refused by their malformed
// query first (an upload's by pipe's engine).
func corsServer(t *testing.T, pipe *roles.API, origins ...string) *echo.Echo {
	t.Helper()
	cfg := DefaultConfig()
	cfg.CORSOrigins = origins
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HTTPErrorHandler = errorHandler(slog.New(slog.DiscardHandler))
	NewAPI(cfg, pipe, roles.NewMetrics(), nil, slog.New(slog.DiscardHandler)).Mount(e)
	return e
}

func corsRequest(e *echo.Echo, method, target, origin string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	req.Header.Set(echo.HeaderOrigin, origin)
	if method == http.MethodOptions {
		req.Header.Set(echo.HeaderAccessControlRequestMethod, http.MethodPost)
		req.Header.Set(echo.HeaderAccessControlRequestHeaders, "Content-Type")
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// A page from an allowed origin may upload (the browser's preflight is
// answered with the path's methods) and read answers, their Location and
// ETag included; a page from any other origin may not.
func TestCORSAllowedOrigin(t *testing.T) {
	e := corsServer(t, roles.NewAPI(roles.Deps{}), "https://app.example")
	pre := corsRequest(e, http.MethodOptions, "/v1/images", "https://app.example")
	h := pre.Header()
	if pre.Code != http.StatusNoContent || h.Get(echo.HeaderAccessControlAllowOrigin) != "https://app.example" ||
		!strings.Contains(h.Get(echo.HeaderAccessControlAllowMethods), http.MethodPost) ||
		!strings.Contains(h.Get(echo.HeaderAccessControlAllowHeaders), "Content-Type") {
		t.Fatalf("preflight: %d %v", pre.Code, h)
	}

	// Even an error answer is readable by the page that caused it.
	got := corsRequest(e, http.MethodGet, "/v1/images?limit=%ZZ", "https://app.example")
	h = got.Header()
	if got.Code != http.StatusBadRequest || h.Get(echo.HeaderAccessControlAllowOrigin) != "https://app.example" ||
		!strings.Contains(h.Get(echo.HeaderAccessControlExposeHeaders), "Location") ||
		!strings.Contains(h.Get(echo.HeaderAccessControlExposeHeaders), "ETag") {
		t.Fatalf("simple request: %d %v", got.Code, h)
	}

	for _, method := range []string{http.MethodOptions, http.MethodGet} {
		rec := corsRequest(e, method, "/v1/images?limit=%ZZ", "https://evil.example")
		if v := rec.Header().Get(echo.HeaderAccessControlAllowOrigin); v != "" {
			t.Errorf("%s from another origin: Access-Control-Allow-Origin %q", method, v)
		}
	}
}

// By default no origin but the process's own is allowed: no CORS headers.
func TestCORSOffByDefault(t *testing.T) {
	e := corsServer(t, roles.NewAPI(roles.Deps{}))
	for _, method := range []string{http.MethodOptions, http.MethodGet} {
		rec := corsRequest(e, method, "/v1/images?limit=%ZZ", "https://app.example")
		if v := rec.Header().Get(echo.HeaderAccessControlAllowOrigin); v != "" {
			t.Errorf("%s: Access-Control-Allow-Origin %q", method, v)
		}
	}
}

func TestCORSOriginsValidated(t *testing.T) {
	for _, bad := range []string{"app.example", "https://app.example/path", "ftp://app.example", "https://"} {
		cfg := DefaultConfig()
		cfg.CORSOrigins = []string{bad}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "cors_origins") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	cfg := DefaultConfig()
	cfg.CORSOrigins = []string{"*", "http://localhost:3000", "https://*.example.com"}
	if err := cfg.Validate(); err != nil {
		t.Errorf("good origins refused: %v", err)
	}
}

// An upload a browser sends for a page of another origin is refused with
// a 403 that says how to allow it, on both upload endpoints, unless the
// origin is allowed for CORS (by name or wildcard). Requests from the
// server's own pages, and from clients that are not browsers (no Origin,
// no Sec-Fetch-Site), go on: here to the 400 of their malformed query.
func TestCrossSiteUploadsRefused(t *testing.T) {
	eng, err := transform.New(transform.DefaultConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	upload := func(e *echo.Echo, target string, headers map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader("not read"))
		req.Host = "imgpipe.example"
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}
	cases := []struct {
		name    string
		origins []string
		headers map[string]string
		want    int
	}{
		{"curl", nil, nil, http.StatusBadRequest},
		{"own page", nil, map[string]string{"Sec-Fetch-Site": "same-origin", echo.HeaderOrigin: "https://imgpipe.example"}, http.StatusBadRequest},
		{"own page, older browser", nil, map[string]string{echo.HeaderOrigin: "https://imgpipe.example"}, http.StatusBadRequest},
		{"other site", nil, map[string]string{"Sec-Fetch-Site": "cross-site", echo.HeaderOrigin: "https://evil.example"}, http.StatusForbidden},
		{"other site, older browser", nil, map[string]string{echo.HeaderOrigin: "https://evil.example"}, http.StatusForbidden},
		{"sibling subdomain", nil, map[string]string{"Sec-Fetch-Site": "same-site", echo.HeaderOrigin: "https://app.imgpipe.example"}, http.StatusForbidden},
		{"listed origin", []string{"https://app.example"}, map[string]string{"Sec-Fetch-Site": "cross-site", echo.HeaderOrigin: "https://app.example"}, http.StatusBadRequest},
		{"wildcard origin", []string{"https://*.example"}, map[string]string{"Sec-Fetch-Site": "cross-site", echo.HeaderOrigin: "https://app.example"}, http.StatusBadRequest},
		{"any origin", []string{"*"}, map[string]string{"Sec-Fetch-Site": "cross-site", echo.HeaderOrigin: "https://evil.example"}, http.StatusBadRequest},
		{"unlisted origin", []string{"https://app.example"}, map[string]string{"Sec-Fetch-Site": "cross-site", echo.HeaderOrigin: "https://evil.example"}, http.StatusForbidden},
	}
	for _, c := range cases {
		e := corsServer(t, roles.NewAPI(roles.Deps{Engine: eng}), c.origins...)
		for _, target := range []string{"/v1/images?width=%ZZ", "/image?width=%ZZ"} {
			rec := upload(e, target, c.headers)
			if rec.Code != c.want {
				t.Errorf("%s, POST %s: %d %s, want %d", c.name, target, rec.Code, rec.Body, c.want)
				continue
			}
			if c.want == http.StatusForbidden && (!strings.Contains(rec.Body.String(), `"code":"cross_origin"`) ||
				!strings.Contains(rec.Body.String(), "http.cors_origins") || !strings.Contains(rec.Body.String(), c.headers[echo.HeaderOrigin])) {
				t.Errorf("%s, POST %s: refusal %s does not say why and how to allow it", c.name, target, rec.Body)
			}
		}
	}
}
