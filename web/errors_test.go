package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/roles"
	"github.com/imgpipe/imgpipe/transform"
)

// A request its client abandoned is not a server failure: 499, not a 500
// with an error in the log or in the metrics. The same error with the
// client still there is an internal one.
func TestClientGoneIsNotAServerError(t *testing.T) {
	for _, gone := range []bool{true, false} {
		var logs bytes.Buffer
		e := echo.New()
		e.HTTPErrorHandler = errorHandler(slog.New(slog.NewTextHandler(&logs, nil)))
		m := roles.NewMetrics()
		e.Use((&Server{}).observe(m))
		e.GET("/", func(echo.Context) error { return fmt.Errorf("stage get: %w", context.Canceled) })
		ctx, cancel := context.WithCancel(context.Background())
		if gone {
			cancel()
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
		cancel()
		logged := strings.Contains(logs.String(), "request failed")
		switch {
		case gone && (rec.Code != statusClientClosed || logged):
			t.Errorf("client gone: status %d, logged as a failure: %v", rec.Code, logged)
		case !gone && (rec.Code != http.StatusInternalServerError || !logged):
			t.Errorf("client there: status %d, logged as a failure: %v", rec.Code, logged)
		}
		if got := recordedStatuses(t, m); len(got) != 1 || got[0] != strconv.Itoa(rec.Code) {
			t.Errorf("metrics: statuses %v recorded, want [%d]", got, rec.Code)
		}
	}
}

// recordedStatuses lists the status label of every HTTP series in m.
func recordedStatuses(t *testing.T, m *roles.Metrics) []string {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, f := range families {
		if f.GetName() != "imgpipe_http_request_seconds" {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "status" {
					statuses = append(statuses, l.GetValue())
				}
			}
		}
	}
	return statuses
}

// A message quoting what the client sent is cut to a bound, on a rune
// boundary; short ones are untouched.
func TestErrorMessageBounded(t *testing.T) {
	long := newError(http.StatusBadRequest, "invalid_parameter", "unknown parameter "+strings.Repeat("é", 500_000))
	if n := len(long.Message); n > maxMessage+len("…") || !utf8.ValidString(long.Message) || !strings.HasSuffix(long.Message, "…") {
		t.Errorf("message of %d bytes, valid UTF-8 %v", n, utf8.ValidString(long.Message))
	}
	if short := newError(http.StatusBadRequest, "x", "width: must be positive"); short.Message != "width: must be positive" {
		t.Errorf("short message changed: %q", short.Message)
	}
	// Through classify too: the engine's errors quote parameters.
	if ae := classify(&transform.Error{Status: 400, Code: "invalid_parameter", Message: strings.Repeat("x", 900_000)}); len(ae.Message) > maxMessage+len("…") {
		t.Errorf("engine message of %d bytes passed through", len(ae.Message))
	}
}

// An outage refuses every request alike: its 503s are logged a line a
// second, saying how many were left out; /readyz's answers are not logged
// at all; other server errors each are.
func TestOutageLogsALineASecond(t *testing.T) {
	var logs bytes.Buffer
	e := echo.New()
	e.HTTPErrorHandler = errorHandler(slog.New(slog.NewTextHandler(&logs, nil)))
	e.GET("/outage", func(echo.Context) error { return fmt.Errorf("stage put: %w", bus.ErrUnavailable) })
	e.GET("/readyz", func(echo.Context) error { return newError(http.StatusServiceUnavailable, codeNotReady, "bus down") })
	e.GET("/bug", func(echo.Context) error { return errors.New("a bug") })
	get := func(path string) int {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	for range 50 {
		if code := get("/outage"); code != http.StatusServiceUnavailable {
			t.Fatalf("outage: %d", code)
		}
		get("/readyz")
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Fatalf("50 refusals in an outage and 50 not-ready probes logged %d lines, want one:\n%s", n, logs.String())
	}
	time.Sleep(1100 * time.Millisecond)
	get("/outage")
	if !strings.Contains(logs.String(), "like_it_since_last_line=49") {
		t.Errorf("the next line does not count the 49 left out:\n%s", logs.String())
	}
	get("/bug")
	get("/bug")
	if n := strings.Count(logs.String(), "a bug"); n != 2 {
		t.Errorf("two internal errors logged %d times, want each", n)
	}
}
