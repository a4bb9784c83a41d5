package web

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/imgpipe/imgpipe/roles"
)

// startServer runs a Server with cfg's timeouts and a route that reads its
// whole body, on a free loopback port.
func startServer(t *testing.T, cfg Config) string {
	t.Helper()
	return startServerWith(t, cfg, roles.NewMetrics(), func(e *echo.Echo) {
		e.POST("/echo", func(c echo.Context) error {
			body, err := io.ReadAll(c.Request().Body)
			if err != nil {
				return err
			}
			return c.String(http.StatusOK, string(body))
		})
	})
}

// startServerWith runs a Server recording into m, with the routes that
// routes adds, on a free loopback port.
func startServerWith(t *testing.T, cfg Config, m *roles.Metrics, routes func(*echo.Echo)) string {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	stopping := make(chan struct{})
	s := NewServer(cfg, slog.New(slog.DiscardHandler), m, func(context.Context) error { return nil }, stopping)
	routes(s.Echo())
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(stopping)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// closedWithin reads conn until the server closes it, failing the test if
// that takes longer than limit, and returns how long it was open since
// start.
func closedWithin(t *testing.T, conn net.Conn, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server kept the connection open for %s", limit)
	}
	return time.Since(start)
}

// A client that starts a request and never finishes its headers is cut
// off after http.read_header_timeout, instead of holding a connection (and
// a file descriptor) for good.
func TestServerDropsStalledHeaders(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ReadHeaderTimeout = 300 * time.Millisecond
	addr := startServer(t, cfg)
	start := time.Now() // before the server can start its clock
	conn := dial(t, addr)
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: imgpipe\r\n")); err != nil {
		t.Fatal(err)
	}
	if took := closedWithin(t, conn, start, 10*time.Second); took < cfg.ReadHeaderTimeout {
		t.Fatalf("closed after %s, before the header timeout %s", took, cfg.ReadHeaderTimeout)
	}
}

// A kept-alive connection with no request is closed after
// http.idle_timeout, not before.
func TestServerClosesIdleConnections(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IdleTimeout = 500 * time.Millisecond
	conn := dial(t, startServer(t, cfg))
	sent := time.Now()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: imgpipe\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	// The idle clock starts once the response is written, before we have
	// read it: the earliest the close may come is from the request's write.
	if took := closedWithin(t, conn, sent, 10*time.Second); took < cfg.IdleTimeout {
		t.Fatalf("closed after %s, before the idle timeout %s", took, cfg.IdleTimeout)
	}
}

// The header timeout bounds headers only: a body that trickles in for
// longer (a large upload on a slow link) is still read whole.
func TestServerWaitsForSlowBodies(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ReadHeaderTimeout = 200 * time.Millisecond
	conn := dial(t, startServer(t, cfg))
	const body = "0123456789"
	if _, err := conn.Write([]byte("POST /echo HTTP/1.1\r\nHost: imgpipe\r\nContent-Length: 10\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	for i := range len(body) {
		time.Sleep(cfg.ReadHeaderTimeout / 2) // 1 s in all, five header timeouts
		if _, err := conn.Write([]byte{body[i]}); err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || strings.TrimSpace(string(got)) != body {
		t.Fatalf("got %d %q %v, want 200 %q", resp.StatusCode, got, err, body)
	}
}

// Zero would mean no bound at all, so it is refused rather than taken.
func TestConfigRefusesUnboundedTimeouts(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"read_header_timeout": func(c *Config) { c.ReadHeaderTimeout = 0 },
		"idle_timeout":        func(c *Config) { c.IdleTimeout = 0 },
	} {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s 0: got %v", name, err)
		}
	}
}

// A client that hangs up in the middle of a download, or leaves a long
// poll, is counted as 499: neither is a server error nor an answer given.
// An event stream, which always ends so, keeps its 200.
// A method the client made up is counted as "other": label values are
// series held for the life of the process.
func TestMetricsOfAbandonedAndOddRequests(t *testing.T) {
	m := roles.NewMetrics()
	addr := startServerWith(t, DefaultConfig(), m, func(e *echo.Echo) {
		e.GET("/big", func(c echo.Context) error {
			return c.Blob(http.StatusOK, "application/octet-stream", make([]byte, 64<<20))
		})
		e.GET("/poll", func(c echo.Context) error {
			<-c.Request().Context().Done()
			return c.JSON(http.StatusAccepted, map[string]string{"status": "queued"})
		})
		e.GET("/stream", func(c echo.Context) error {
			c.Response().Header().Set(echo.HeaderContentType, "text/event-stream")
			c.Response().WriteHeader(http.StatusOK)
			c.Response().Flush()
			<-c.Request().Context().Done()
			return nil
		})
	})
	for _, path := range []string{"/big", "/poll", "/stream"} {
		conn := dial(t, addr)
		if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if path == "/big" {
			if _, err := io.ReadFull(conn, make([]byte, 64<<10)); err != nil {
				t.Fatal(err)
			}
		}
		_ = conn.(*net.TCPConn).SetLinger(0) // a reset, as a killed client gives
		conn.Close()
	}
	for _, method := range []string{"FOO", "BAR", http.MethodGet} {
		req, _ := http.NewRequest(method, "http://"+addr+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		series := httpSeries(t, m)
		if series["GET /big 499"] == 1 && series["GET /poll 499"] == 1 && series["GET /stream 200"] == 1 && series["other /healthz 405"] == 2 {
			for s := range series {
				if strings.HasPrefix(s, "FOO") || strings.HasPrefix(s, "BAR") || strings.HasSuffix(s, " 500") || strings.HasSuffix(s, " 202") {
					t.Errorf("series %q", s)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("series %v: want GET /big 499, GET /poll 499, GET /stream 200 and two other /healthz 405", series)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpSeries counts the requests of every "method route status" in m.
func httpSeries(t *testing.T, m *roles.Metrics) map[string]uint64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "imgpipe_http_request_seconds" {
			continue
		}
		for _, metric := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range metric.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			series[l["method"]+" "+l["route"]+" "+l["status"]] = metric.GetHistogram().GetSampleCount()
		}
	}
	return series
}

// /healthz, /readyz and /metrics answer HEAD as GET, without a body.
func TestHealthEndpointsAnswerHEAD(t *testing.T) {
	addr := startServer(t, DefaultConfig())
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Head("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) != 0 {
			t.Errorf("HEAD %s: %d with %d bytes", path, resp.StatusCode, len(body))
		}
	}
}

// Every answer says nosniff, which lets JSON carry specs as they are
// written: "width=10&height=10", not "width=10\u0026height=10".
func TestAnswersAreNoSniffAndJSONUnescaped(t *testing.T) {
	addr := startServerWith(t, DefaultConfig(), roles.NewMetrics(), func(e *echo.Echo) {
		e.GET("/spec", func(c echo.Context) error {
			return c.JSON(http.StatusOK, map[string]string{"spec": "width=10&height=10", "note": "<b>"})
		})
		e.GET("/refused", func(c echo.Context) error {
			return newError(http.StatusBadRequest, "bad_spec", "fit=a&b is not a fit")
		})
	})
	for path, want := range map[string]string{
		"/spec":    `{"note":"<b>","spec":"width=10&height=10"}`,
		"/refused": `"message":"fit=a&b is not a fit"`,
		"/healthz": `{"status":"ok"}`,
		"/nothing": `"code":"not_found"`,
	} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %v %s, want nosniff and %s", path, resp.StatusCode, resp.Header, body, want)
		}
	}
}

// With a drain delay, a stopping process keeps its listener open that
// long, /readyz answering 503 to new connections, then closes it.
func TestDrainDelayAnswersNotReadyBeforeClosing(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen, cfg.DrainDelay = "127.0.0.1:0", 500*time.Millisecond
	stopping := make(chan struct{})
	s := NewServer(cfg, slog.New(slog.DiscardHandler), roles.NewMetrics(), func(context.Context) error { return nil }, stopping)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + s.Addr().String()
	close(stopping)
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(context.Background()) }()
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(base + "/readyz")
	if err != nil {
		t.Fatalf("/readyz during the drain delay: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "shutting down") {
		t.Errorf("/readyz during the drain delay: %d %s", resp.StatusCode, body)
	}
	select {
	case err := <-stopped:
		t.Fatalf("stopped before the delay: %v", err)
	default:
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/readyz"); err == nil {
		t.Error("the listener is still open after Stop")
	}
}
