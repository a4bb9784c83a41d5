package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/internal/loglimit"
	"github.com/imgpipe/imgpipe/roles"
	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/transform"
)

// apiError is the one error shape of the API: {"error":{"code","message"}}.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Message }

// errorBody wraps ae in the shape every error answer has.
func errorBody(ae *apiError) map[string]*apiError { return map[string]*apiError{"error": ae} }

func newError(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: clip(msg)}
}

// maxMessage bounds an error message: many quote what the client sent (an
// unknown parameter, a bad value), which may be most of a megabyte.
const maxMessage = 1024

func clip(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "…"
}

// classify turns any error into the answer a client may see. Client mistakes
// keep their 4xx; outages are 503 with Retry-After; only what is left is a
// 500, with the cause in the log and not in the body.
func classify(err error) *apiError {
	var ae *apiError
	var te *transform.Error
	var he *echo.HTTPError
	var room *roles.RoomError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &te):
		return newError(te.Status, te.Code, te.Message)
	case errors.Is(err, store.ErrNotFound), errors.Is(err, bus.ErrNotFound):
		return newError(http.StatusNotFound, "not_found", "no such image")
	case errors.Is(err, store.ErrBadCursor):
		return newError(http.StatusBadRequest, "bad_cursor", "cursor is not one this server made")
	case errors.As(err, &room):
		return newError(http.StatusServiceUnavailable, codeDiskLow, room.Error())
	case errors.Is(err, roles.ErrWatermarkMissing):
		return newError(http.StatusBadRequest, "bad_spec", err.Error())
	case errors.Is(err, bus.ErrUnavailable), errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return newError(http.StatusServiceUnavailable, codeUnavailable, "the pipeline is unavailable, retry later")
	case errors.As(err, &he):
		msg, _ := he.Message.(string)
		if msg == "" {
			msg = http.StatusText(he.Code)
		}
		return newError(he.Code, codeFor(he.Code), msg)
	}
	return newError(http.StatusInternalServerError, "internal", "internal error")
}

func codeFor(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	}
	return "bad_request"
}

// statusClientClosed is nginx's status for a request its client abandoned.
const statusClientClosed = 499

// answer is classify for a request that may have been abandoned: the client
// hung up (a closed tab, a timeout on its side), so nobody reads this answer
// and nothing failed here. The log and the metrics both see 499.
func answer(err error, c echo.Context) *apiError {
	if clientGone(c, err) {
		return newError(statusClientClosed, "client_closed_request", "the client closed the request")
	}
	return classify(err)
}

// Codes of the 503s: the bus or the store unreachable, and /readyz's.
const (
	codeUnavailable = "unavailable"
	codeNotReady    = "not_ready"
	codeStopping    = "stopping"
	// codeDiskLow refuses uploads while the disk keeps its room for the
	// store (roles.RoomError).
	codeDiskLow = "disk_low"
)

// errorHandler is echo's last stop for every error a handler returns.
// Server errors are logged, except /readyz's answers (the probe's reply is
// the report). An outage is logged a line a second: during one, every
// upload and every read is refused alike. (Its errors stay errors: what
// the API calls unavailable includes causes no retry mends.)
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	var outage, diskLow loglimit.Limiter
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		ae := answer(err, c)
		attrs := []any{"method", c.Request().Method, "path", c.Request().URL.Path, "status", ae.Status, "err", err}
		switch {
		case ae.Status < 500, ae.Code == codeNotReady, ae.Code == codeStopping:
		case ae.Code == codeBusy:
			log.Warn("request failed", attrs...) // load shed on purpose (budget.go), not a failure
		case ae.Code == codeUnavailable:
			if ok, n := outage.Allow(); ok {
				log.Error("request failed", append(attrs, "like_it_since_last_line", n)...)
			}
		case ae.Code == codeDiskLow:
			if ok, n := diskLow.Allow(); ok {
				log.Warn("upload refused", append(attrs, "like_it_since_last_line", n)...)
			}
		default:
			log.Error("request failed", attrs...)
		}
		if ae.Status == http.StatusServiceUnavailable {
			c.Response().Header().Set("Retry-After", "5")
		}
		_ = c.JSON(ae.Status, errorBody(ae))
	}
}
