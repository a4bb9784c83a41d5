package roles

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store/local"
)

// TestStageSweeperClearsOnlyOrphans: of blobs staged over `after` ago, the
// sweep clears those no role will (their image unknown to the status
// table, no work queued, the store holding it as final or not at all) and
// keeps every other. The orphans are staged by the test: the upload that
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
	// Still needed.
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
	if n != 2 {
		t.Errorf("cleared %d blobs, want 2", n)
	}
	for key, kept := range map[string]bool{
		model.OriginalKey(id('a')):                     false,
		model.ResultKey(id('b'), model.DefaultVariant): false,
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
