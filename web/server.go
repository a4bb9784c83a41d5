package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imgpipe/imgpipe/roles"
)

// Server is the process's one HTTP listener. It is a service under the
// roles manager: started last, stopped first, so no upload arrives while the
// workers behind it drain. Roles add their routes with Mount.
type Server struct {
	cfg      Config
	echo     *echo.Echo
	log      *slog.Logger
	ready    func(context.Context) error
	stopping <-chan struct{}
	failed   chan error
	addr     net.Addr
}

// NewServer serves /healthz, /readyz and /metrics. ready checks the bus and
// the store; stopping is closed when the process starts shutting down, so
// load balancers stop sending work before the listener closes.
func NewServer(cfg Config, log *slog.Logger, m *roles.Metrics, ready func(context.Context) error, stopping <-chan struct{}) *Server {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(log)
	e.Server.ReadHeaderTimeout, e.Server.IdleTimeout = cfg.ReadHeaderTimeout, cfg.IdleTimeout
	s := &Server{cfg: cfg, echo: e, log: log, ready: ready, stopping: stopping, failed: make(chan error, 1)}
	e.JSONSerializer = jsonSerializer{}
	e.Use(s.recover, s.observe(m), noSniff)
	// HEAD too: some load balancers and uptime checkers probe with it.
	both := []string{http.MethodGet, http.MethodHead}
	e.Match(both, "/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.Match(both, "/readyz", s.readyz)
	e.Match(both, "/metrics", echo.WrapHandler(promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})))
	return s
}

// Echo gives roles the router to mount their routes on.
func (s *Server) Echo() *echo.Echo { return s.echo }

// Addr is the bound address once started (useful with port 0).
func (s *Server) Addr() net.Addr { return s.addr }

func (s *Server) Name() string { return "http" }

func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	s.addr = ln.Addr()
	s.echo.Listener = ln
	go func() {
		err := s.echo.Start("")
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.failed <- err
		}
	}()
	s.log.Info("listening", "url", "http://"+ln.Addr().String())
	return nil
}

// Stop closes the listener, after DrainDelay (bounded by ctx), then waits
// for the requests in flight.
func (s *Server) Stop(ctx context.Context) error {
	if s.cfg.DrainDelay > 0 {
		s.log.Info("draining: /readyz answers 503 until the listener closes", "in", s.cfg.DrainDelay)
		select {
		case <-time.After(s.cfg.DrainDelay):
		case <-ctx.Done():
		}
	}
	return s.echo.Shutdown(ctx)
}

func (s *Server) Failed() <-chan error { return s.failed }

func (s *Server) readyz(c echo.Context) error {
	select {
	case <-s.stopping:
		return newError(http.StatusServiceUnavailable, codeStopping, "shutting down")
	default:
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return newError(http.StatusServiceUnavailable, codeNotReady, err.Error())
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// recover turns a handler panic into a logged 500 instead of a dead process.
func (s *Server) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("handler panic", "path", c.Request().URL.Path, "panic", r)
				err = newError(http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		return next(c)
	}
}

// observe records request durations by route pattern (not raw path, which
// would make one series per image id).
func (s *Server) observe(m *roles.Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			status := c.Response().Status
			switch {
			case clientGone(c, err) && c.Response().Header().Get(echo.HeaderContentType) != "text/event-stream":
				// Whatever the handler answered, or was answering, nobody
				// read it: a download cut short or an abandoned long poll
				// is the client's doing, not a 500 or a 202. (An event
				// stream always ends so: it keeps its 200.)
				status = statusClientClosed
			case err != nil:
				status = answer(err, c).Status
			}
			m.HTTP.WithLabelValues(methodLabel(c.Request().Method), c.Path(), strconv.Itoa(status)).Observe(time.Since(start).Seconds())
			return err
		}
	}
}

// clientGone reports a request whose client left before its answer was
// read: its context is cancelled, or writing the answer found the
// connection closed.
func clientGone(c echo.Context, err error) bool {
	return c.Request().Context().Err() != nil || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// methodLabel keeps the metrics' method label to the methods HTTP defines:
// the method is the client's to choose, and every new label value is a new
// series held for the life of the process.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
