package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/imgpipe/imgpipe/roles"
)

// events is GET /v1/events: live activity as Server-Sent Events. Each event
// is one model.Event as JSON, with its feed position as the SSE id. A
// comment line every 15 s keeps proxies from closing an idle stream.
func (a *API) events(c echo.Context) error {
	// A client that lost the stream (EventSource does this by itself)
	// sends the id of the last event it got, and resumes after it.
	var after roles.FeedPosition
	if last := c.Request().Header.Get("Last-Event-ID"); last != "" {
		p, err := roles.ParseFeedPosition(last)
		if err != nil {
			return newError(http.StatusBadRequest, "bad_last_event_id", "Last-Event-ID: "+err.Error())
		}
		after = p
	}
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
		err := a.pipe.Watch(ctx, after, func(p roles.FeedPosition, data []byte) {
			line := append(append([]byte("id: "+p.String()+"\ndata: "), data...), '\n', '\n')
			// Each line has an id the client resumes after: one dropped
			// would be lost for good. A slow reader holds up its own watch
			// (a consumer of its own) and nothing else.
			select {
			case lines <- line:
			case <-ctx.Done():
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
		case line := <-lines:
			if _, err := w.Write(line); err != nil {
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
