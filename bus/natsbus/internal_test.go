package natsbus

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
)

func TestRetryDelay(t *testing.T) {
	r := bus.Retry{MaxDeliver: 5, Backoff: []time.Duration{time.Second, 5 * time.Second}}
	for attempt, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 5 * time.Second, 9: 5 * time.Second} {
		if got := retryDelay(r, attempt); got != want {
			t.Errorf("attempt %d: %s, want %s", attempt, got, want)
		}
	}
	if got := retryDelay(bus.Retry{MaxDeliver: 3}, 1); got != 0 {
		t.Errorf("no backoff: %s, want 0", got)
	}
}

func TestNames(t *testing.T) {
	n := names{"imgpipe"}
	for got, want := range map[string]string{
		n.stream(bus.Transform):                    "IMGPIPE_TRANSFORM",
		n.subject(bus.Save, "done.ab12"):           "imgpipe.save.done.ab12",
		n.wildcard(bus.Activity):                   "imgpipe.activity.>",
		n.trim(bus.Save, "imgpipe.save.done.ab12"): "done.ab12",
		n.statusBucket():                           "imgpipe_status",
		n.stream(stageQueue):                       "IMGPIPE_STAGE",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}

// TestOpenEmbeddedOwnsServer: the server started by OpenEmbedded goes
// down with the Bus.
func TestOpenEmbeddedOwnsServer(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Replicas = 3 // forced to 1 on one embedded node
	b, err := OpenEmbedded(t.Context(), cfg, EmbeddedOptions{Dir: t.TempDir()}, "owner", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b.server.Server().Running() {
		t.Fatal("embedded server still running after Close")
	}
}

// TestLeaderGet: the leader's answer, which confirms a direct get's miss,
// is the same message as the direct get's, headers included; a subject
// never written is still a miss.
func TestLeaderGet(t *testing.T) {
	b, err := OpenEmbedded(t.Context(), DefaultConfig(), EmbeddedOptions{Dir: t.TempDir()}, "leader", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := stage{b}
	data := make([]byte, chunkSize+10) // a head naming a second chunk
	for i := range data {
		data[i] = byte(i)
	}
	if err := s.Put(t.Context(), "originals/abc", data); err != nil {
		t.Fatal(err)
	}
	head := s.keySubject("originals/abc") + ".h"
	direct, err := b.stage.GetLastMsgForSubject(t.Context(), head)
	if err != nil {
		t.Fatal(err)
	}
	leader, err := s.leaderGet(t.Context(), head)
	if err != nil {
		t.Fatal(err)
	}
	if leader.Subject != direct.Subject || leader.Sequence != direct.Sequence || !bytes.Equal(leader.Data, direct.Data) ||
		leader.Header.Get(hdrChunks) != "2" || leader.Header.Get(hdrPut) != direct.Header.Get(hdrPut) || leader.Header.Get(hdrSize) != direct.Header.Get(hdrSize) {
		t.Fatalf("leader get: %s #%d, %d bytes, headers %v; direct get: %s #%d, %d bytes, headers %v",
			leader.Subject, leader.Sequence, len(leader.Data), leader.Header, direct.Subject, direct.Sequence, len(direct.Data), direct.Header)
	}
	if _, err := s.leaderGet(t.Context(), s.keySubject("originals/none")+".h"); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("leader get of a subject never written: %v, want ErrMsgNotFound", err)
	}
	// The server's other refusals keep their status, so that a 503 (a
	// replica group without a leader) reads as "unavailable".
	var apiErr *jetstream.APIError
	if _, err := b.leaderGet(t.Context(), "NO_SUCH_STREAM", "x"); !errors.As(err, &apiErr) || apiErr.Code != 404 || apiErr.ErrorCode != jetstream.JSErrCodeStreamNotFound {
		t.Fatalf("leader get on a missing stream: %v, want the server's 404 stream-not-found", err)
	}
}

// TestStatusLatest: the leader's read of a status record is the direct
// read's, revision included; a record never written, or deleted, is none.
func TestStatusLatest(t *testing.T) {
	b, err := OpenEmbedded(t.Context(), DefaultConfig(), EmbeddedOptions{Dir: t.TempDir()}, "latest", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := status{b}
	img := &model.Image{ID: "abc", Status: model.StatusQueued}
	if _, _, err := s.Create(t.Context(), img); err != nil {
		t.Fatal(err)
	}
	img.Status = model.StatusProcessing
	if err := s.Put(t.Context(), img); err != nil {
		t.Fatal(err)
	}
	dv, drev, err := s.direct(t.Context(), "abc")
	if err != nil {
		t.Fatal(err)
	}
	lv, lrev, err := s.latest(t.Context(), "abc")
	if err != nil || lrev != drev || !bytes.Equal(lv, dv) {
		t.Fatalf("latest: rev %d %q, %v; direct: rev %d %q", lrev, lv, err, drev, dv)
	}
	if _, _, err := s.latest(t.Context(), "none"); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("latest of a record never written: %v", err)
	}
	if err := b.kv.Delete(t.Context(), "abc"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.latest(t.Context(), "abc"); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("latest of a deleted record: %v", err)
	}
}

// A consumer's AckWait can shorten the bus's deadline, never lengthen it:
// the bus's is what an operator set (a crash test sets it short, too).
func TestAckWaitShortensOnly(t *testing.T) {
	for _, c := range []struct{ consumer, bus, want time.Duration }{
		{0, 2 * time.Minute, 2 * time.Minute},
		{30 * time.Second, 2 * time.Minute, 30 * time.Second},
		{30 * time.Second, 8 * time.Second, 8 * time.Second},
	} {
		if got := ackWait(c.consumer, c.bus); got != c.want {
			t.Errorf("ackWait(%v, %v) = %v, want %v", c.consumer, c.bus, got, c.want)
		}
	}
}

// TestServerErrorsAreUnavailable: a 503 (no leader, or a store that
// cannot write: JSStreamStoreFailedF, 10077) is an outage to wait out;
// the server's other refusals are not.
func TestServerErrorsAreUnavailable(t *testing.T) {
	for _, c := range []struct {
		code, errCode int
		want          bool
	}{{503, 10077, true}, {503, 10008, true}, {500, 10051, false}, {400, 10052, false}, {404, 10059, false}} {
		err := wrap("op", &jetstream.APIError{Code: c.code, ErrorCode: jetstream.ErrorCode(c.errCode), Description: "refused"})
		if got := errors.Is(err, bus.ErrUnavailable); got != c.want {
			t.Errorf("API error %d: unavailable %v, want %v (%v)", c.code, got, c.want, err)
		}
	}
}

// A binding deleted by an operator (`nats kv del`, a delete marker) reads as
// none, and the next process records its own.
func TestDeletedBindingIsNone(t *testing.T) {
	b, err := OpenEmbedded(t.Context(), DefaultConfig(), EmbeddedOptions{Dir: t.TempDir()}, "unbind", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	first := bus.StoreBinding{Store: "aaaa", By: "one", At: time.Now().UTC()}
	if _, err := b.BindStore(t.Context(), first, false); err != nil {
		t.Fatal(err)
	}
	if err := b.meta.Delete(t.Context(), storeKey); err != nil {
		t.Fatal(err)
	}
	if sb, err := b.BoundStore(t.Context()); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("BoundStore after the delete: %+v, %v; want ErrNotFound", sb, err)
	}
	next := bus.StoreBinding{Store: "bbbb", By: "two", At: time.Now().UTC()}
	if got, err := b.BindStore(t.Context(), next, false); err != nil || got.Store != "bbbb" {
		t.Fatalf("BindStore after the delete: %+v, %v", got, err)
	}
}
