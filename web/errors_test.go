package web

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// A request its client abandoned is not a server failure: 499, not a 500
// with an error in the log. The same error with the client still there is
// an internal one.
func TestClientGoneIsNotAServerError(t *testing.T) {
	for _, gone := range []bool{true, false} {
		var logs bytes.Buffer
		e := echo.New()
		e.HTTPErrorHandler = errorHandler(slog.New(slog.NewTextHandler(&logs, nil)))
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
	}
}
