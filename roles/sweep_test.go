package roles

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/internal/natstest"
	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store/local"
)

// TestStageSweeperClearsOnlyOrphans: of blobs staged over `after` ago, the
// sweep clears those no role will (no work queued for their image, and
// the image unknown to the status table with the store holding it as
// final or not at all, or ended and stored as it ended) and keeps every
// other. The orphans are staged by the test: the upload that
// leaves one (its transform refused by a bus failing between two writes)
// cannot be made to fail at that moment for real.
func TestStageSweeperClearsOnlyOrphans(t *testing.T) {
	b := realBus(t)
	st, err := local.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := Deps{Bus: b, Store: st, Log: slog.New(slog.DiscardHandler), Metrics: NewMetrics()}
	ctx := t.Context()
	id := func(c byte) string { return strings.Repeat(string(c), 32) }
	now := time.Now().UTC()
	record := func(c byte, status model.Status) *model.Image {
		return &model.Image{ID: id(c), Status: status, Spec: "width=10", CreatedAt: now, UpdatedAt: now}
	}
	stage := func(key string) {
		if err := b.Stage().Put(ctx, key, []byte("bytes of "+key)); err != nil {
			t.Fatal(err)
		}
	}

	// Orphans.
	stage(model.OriginalKey(id('a'))) // refused upload: known nowhere
	stage(model.ResultKey(id('b'), model.DefaultVariant))
	if err := st.SaveImage(ctx, record('b', model.StatusDone), nil); err != nil { // stored for good
		t.Fatal(err)
	}
	// A variant a failed attempt rendered before another failed: the
	// image ended failed, and is stored as it ended.
	stage(model.ResultKey(id('h'), "thumb"))
	for _, put := range []func(*model.Image) error{
		func(img *model.Image) error { return b.Status().Put(ctx, img) },
		func(img *model.Image) error { return st.SaveImage(ctx, img, nil) },
	} {
		if err := put(record('h', model.StatusFailed)); err != nil {
			t.Fatal(err)
		}
	}
	// Still needed.
	stage(model.ResultKey(id('i'), "thumb")) // ended, its save still to come
	if err := b.Status().Put(ctx, record('i', model.StatusFailed)); err != nil {
		t.Fatal(err)
	}
	stage(model.ResultKey(id('j'), "thumb")) // the store holds an earlier run
	newRun := record('j', model.StatusDone)
	newRun.Retries = 1
	if err := b.Status().Put(ctx, newRun); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveImage(ctx, record('j', model.StatusFailed), nil); err != nil {
		t.Fatal(err)
	}
	stage(model.ResultKey(id('k'), "thumb")) // failed again, the earlier failure stored
	again := record('k', model.StatusFailed)
	again.Retries = 1
	if err := b.Status().Put(ctx, again); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveImage(ctx, record('k', model.StatusFailed), nil); err != nil {
		t.Fatal(err)
	}
	stage(model.OriginalKey(id('c')))
	if err := b.Publish(ctx, bus.Message{Queue: bus.Transform, Subject: id('c'), Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	stage(model.OriginalKey(id('d')))
	if err := b.Publish(ctx, bus.Message{Queue: bus.Save, Subject: saveFinal + "." + id('d'), Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	stage(model.OriginalKey(id('e')))
	if err := b.Status().Put(ctx, record('e', model.StatusProcessing)); err != nil {
		t.Fatal(err)
	}
	stage(model.OriginalKey(id('f')))
	if err := st.PutImage(ctx, record('f', model.StatusQueued)); err != nil { // stored, not final: unexplained, kept
		t.Fatal(err)
	}
	stage("not/an/image")
	time.Sleep(300 * time.Millisecond)
	stage(model.OriginalKey(id('g'))) // too young to judge

	s := &stageSweeper{deps: d, after: 200 * time.Millisecond}
	n, err := s.sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("cleared %d blobs, want 3", n)
	}
	for key, kept := range map[string]bool{
		model.OriginalKey(id('a')):                     false,
		model.ResultKey(id('b'), model.DefaultVariant): false,
		model.ResultKey(id('h'), "thumb"):              false,
		model.ResultKey(id('i'), "thumb"):              true,
		model.ResultKey(id('j'), "thumb"):              true,
		model.ResultKey(id('k'), "thumb"):              true,
		model.OriginalKey(id('c')):                     true,
		model.OriginalKey(id('d')):                     true,
		model.OriginalKey(id('e')):                     true,
		model.OriginalKey(id('f')):                     true,
		"not/an/image":                                 true,
		model.OriginalKey(id('g')):                     true,
	} {
		_, err := b.Stage().GetLatest(ctx, key)
		if got := err == nil; got != kept || (err != nil && !errors.Is(err, bus.ErrNotFound)) {
			t.Errorf("%s: kept %v (%v), want kept %v", key, got, err, kept)
		}
	}
	// A second sweep finds nothing more.
	if n, err := s.sweep(ctx); n != 0 || err != nil {
		t.Errorf("second sweep: %d, %v", n, err)
	}
}

// TestStageSweepSkipsWhatItCannotJudge: a blob whose image's record cannot
// be read (written by a newer version, say) is left alone, and the sweep
// goes on to the blobs after it, instead of stopping at it every hour.
func TestStageSweepSkipsWhatItCannotJudge(t *testing.T) {
	ns, err := natsbus.StartEmbedded(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	b := connectTo(t, ns)
	st, err := local.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	unreadable, orphan, young := strings.Repeat("a", 32), strings.Repeat("b", 32), strings.Repeat("c", 32)
	for _, id := range []string{unreadable, orphan} {
		if err := b.Stage().Put(ctx, model.OriginalKey(id), []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := natstest.JetStream(t, "", nats.InProcessServer(ns)).KeyValue(ctx, "imgpipe_status")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, unreadable, []byte("not a record")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := b.Stage().Put(ctx, model.OriginalKey(young), []byte(young)); err != nil {
		t.Fatal(err)
	}

	s := &stageSweeper{deps: Deps{Bus: b, Store: st, Log: slog.New(slog.DiscardHandler), Metrics: NewMetrics()}, after: 200 * time.Millisecond}
	if n, err := s.sweep(ctx); n != 1 || err != nil {
		t.Fatalf("sweep: cleared %d, %v; want the orphan cleared past the unreadable record", n, err)
	}
	if _, err := b.Stage().GetLatest(ctx, model.OriginalKey(unreadable)); err != nil {
		t.Errorf("the blob of the unreadable record: %v, want it kept", err)
	}
	if _, err := b.Stage().GetLatest(ctx, model.OriginalKey(orphan)); !errors.Is(err, bus.ErrNotFound) {
		t.Errorf("the orphan after it: %v, want it cleared", err)
	}
}
