package web

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/imgpipe/imgpipe/roles"
)

// budgetAPI is an API with cfg's limits whose upload routes only read the
// request (readUploads), answering 204: enough to see the budget at work.
func budgetAPI(t *testing.T, cfg Config) (*API, *echo.Echo) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := &API{cfg: cfg, pipe: roles.NewAPI(roles.Deps{}), budget: &uploadBudget{limit: cfg.MaxInflightUploadBytes, held: roles.NewMetrics().UploadBytes}}
	e := echo.New()
	e.HTTPErrorHandler = errorHandler(slog.New(slog.DiscardHandler))
	e.POST("/read", func(c echo.Context) error {
		if _, err := a.readUploads(c, ""); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}, a.withUploadBudget)
	return a, e
}

func post(e *echo.Echo, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/read", bytes.NewReader(body))
	req.Header.Set(echo.HeaderContentType, contentType)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// The smallest budget the configuration allows holds the largest upload,
// the read that finds its end included, and gives it all back.
func TestUploadBudgetFitsTheLargestUpload(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxUploadBytes, cfg.MaxRequestBytes = 1<<20, 1<<20
	cfg.MaxInflightUploadBytes = cfg.MaxRequestBytes + budgetChunk
	a, e := budgetAPI(t, cfg)
	if rec := post(e, "image/jpeg", make([]byte, cfg.MaxUploadBytes)); rec.Code != http.StatusNoContent {
		t.Fatalf("largest upload: %d %s", rec.Code, rec.Body)
	}
	if used := a.budget.used.Load(); used != 0 {
		t.Fatalf("%d bytes still held after the request", used)
	}

	cfg.MaxInflightUploadBytes = cfg.MaxRequestBytes
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "max_inflight_upload_bytes") {
		t.Fatalf("a budget without room for the end-of-body read: %v", err)
	}
}

// A multipart request declared over the request limit is a client mistake
// (413), even while the budget is spent: 503 would have the client retry a
// request that can never fit.
func TestUploadBudgetSpentStill413(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxUploadBytes, cfg.MaxRequestBytes = 1<<20, 1<<20
	cfg.MaxInflightUploadBytes = cfg.MaxRequestBytes + budgetChunk
	a, e := budgetAPI(t, cfg)
	if !a.budget.take(cfg.MaxInflightUploadBytes) {
		t.Fatal("could not spend the budget")
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", "big.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part.Write(make([]byte, cfg.MaxRequestBytes)); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	if rec := post(e, mw.FormDataContentType(), body.Bytes()); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized multipart while busy: %d %s", rec.Code, rec.Body)
	}
	// And one that fits is told the server is busy, not that it is wrong.
	rec := post(e, "image/jpeg", []byte("small"))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), `"busy"`) {
		t.Fatalf("upload while busy: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	var spent *budgetSpent
	if _, err := io.ReadAll(&budgetedBody{ReadCloser: io.NopCloser(strings.NewReader("x")), b: a.budget}); !errors.As(err, &spent) {
		t.Fatalf("reading past a spent budget: %v", err)
	}
}

// A client that asks "Expect: 100-continue" for an upload over the limit
// hears 413 at once, without sending the body: the refusal is not held
// back waiting to discard a body the client holds back in turn.
func TestOversizedUploadRefusedBeforeContinue(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxUploadBytes = 10000
	_, e := budgetAPI(t, cfg)
	srv := httptest.NewServer(e)
	defer srv.Close()
	for _, ct := range []string{"image/jpeg", "multipart/form-data; boundary=x"} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		length := 60000
		if strings.HasPrefix(ct, "multipart") {
			length = int(cfg.MaxRequestBytes) + 1
		}
		fmt.Fprintf(conn, "POST /read HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", ct, length)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Fatalf("%s: no answer without the body: %v", ct, err)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: %d, want 413", ct, resp.StatusCode)
		}
	}
}
