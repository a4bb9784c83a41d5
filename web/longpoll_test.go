package web

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/roles"
	"github.com/imgpipe/imgpipe/store/local"
)

// A long poll answers when the image's record is written, not at its next
// poll: here polls come an hour apart, so only the status watch can end
// the wait within the test's patience.
func TestLongPollWakesOnWrite(t *testing.T) {
	first, most := pollFirst, pollMax
	pollFirst, pollMax = time.Hour, time.Hour
	defer func() { pollFirst, pollMax = first, most }()

	e, api, b, img := pendingImage(t)
	id := img.ID
	result := []byte("the transformed bytes")
	if err := b.Stage().Put(t.Context(), model.ResultKey(id, model.DefaultVariant), result); err != nil {
		t.Fatal(err)
	}

	answered := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/images/"+id+"/result?wait=50s", nil))
		answered <- rec
	}()
	// Written only once the poll has looked and is waiting: registered,
	// then given time for its first look (a pending record).
	for deadline := time.Now().Add(10 * time.Second); !registered(api.waiters, id); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the long poll never registered")
		}
	}
	time.Sleep(200 * time.Millisecond)
	done := *img
	done.Status = model.StatusDone
	done.Results = []model.Result{{Variant: model.DefaultVariant, Info: model.Info{Format: "png", Size: int64(len(result)), SHA256: "abc"}}}
	// The watch starts with the first long poll, and a write before it is
	// up goes unseen: the worker's write is repeated until the answer.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if err := b.Status().Put(t.Context(), &done); err != nil {
			t.Fatal(err)
		}
		select {
		case rec := <-answered:
			if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), result) {
				t.Fatalf("long poll answered %d %q", rec.Code, rec.Body.String())
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("the long poll was not woken by the record's writes")
}

// pendingImage serves the API over a real bus and store, with one image
// queued in the status table and nothing rendered.
func pendingImage(t *testing.T) (*echo.Echo, *API, *natsbus.Bus, *model.Image) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	b, err := natsbus.OpenEmbedded(t.Context(), natsbus.DefaultConfig(), natsbus.EmbeddedOptions{Dir: t.TempDir()}, "longpoll", quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	st, err := local.Open(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	stopping := make(chan struct{})
	t.Cleanup(func() { close(stopping) })
	pipe := roles.NewAPI(roles.Deps{Bus: b, Store: st, Log: quiet, Metrics: roles.NewMetrics()})
	e := echo.New()
	e.HTTPErrorHandler = errorHandler(quiet)
	api := NewAPI(DefaultConfig(), pipe, roles.NewMetrics(), stopping, quiet)
	api.Mount(e)

	now := time.Now().UTC()
	img := &model.Image{ID: "0123456789abcdef0123456789abcdef", Status: model.StatusQueued, Spec: "width=10", CreatedAt: now, UpdatedAt: now}
	if _, _, err := b.Status().Create(t.Context(), img); err != nil {
		t.Fatal(err)
	}
	return e, api, b, img
}

// A result not rendered yet has no representation for If-Match to match,
// not even "*": 412 (RFC 9110 13.1.1), where without it the answer is 202.
func TestIfMatchOnPendingResult(t *testing.T) {
	e, _, _, img := pendingImage(t)
	for _, c := range []struct {
		ifMatch string
		want    int
	}{{"", http.StatusAccepted}, {"*", http.StatusPreconditionFailed}, {`"abc"`, http.StatusPreconditionFailed}} {
		req := httptest.NewRequest(http.MethodGet, "/v1/images/"+img.ID+"/result", nil)
		if c.ifMatch != "" {
			req.Header.Set("If-Match", c.ifMatch)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != c.want || !bytes.Contains(rec.Body.Bytes(), []byte(`"code":`)) && c.want != http.StatusAccepted {
			t.Errorf("If-Match %q on a pending result: %d %s, want %d", c.ifMatch, rec.Code, rec.Body, c.want)
		}
	}
}

func registered(w *waiters, id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.byID[id]) > 0
}
