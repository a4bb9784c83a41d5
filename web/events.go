package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// events is GET /v1/events: live activity as Server-Sent Events. Each event
// is one model.Event as JSON. A comment line every 15 s keeps proxies from
// closing an idle stream.
func (a *API) events(c echo.Context) error {
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()

	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	// The bus calls back from its own goroutine; one writer goroutine owns
	// the response, so lines from the two never interleave.
	lines := make(chan []byte, 256)
	go func() {
		err := a.pipe.Watch(ctx, func(data []byte) {
			select {
			case lines <- data:
			default: // a slow reader loses live lines rather than stalling the bus
			}
		})
		if err != nil && ctx.Err() == nil {
			c.Logger().Warnf("event watch ended: %v", err)
		}
		cancel()
	}()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.stopping:
			return nil
		case data := <-lines:
			if _, err := w.Write(append(append([]byte("data: "), data...), '\n', '\n')); err != nil {
				return nil
			}
		case <-tick.C:
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return nil
			}
		}
		w.Flush()
	}
}
