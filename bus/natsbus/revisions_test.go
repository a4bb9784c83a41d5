package natsbus_test

import (
	"testing"

	"github.com/imgpipe/imgpipe/model"
)

// TestStatusStaleRevision: a process that remembers an old revision of a
// record, written since by another process, must not write over it: its
// compare-and-set is refused and it decides again on the fresh record.
func TestStatusStaleRevision(t *testing.T) {
	ns := startServer(t, t.TempDir(), "")
	cfg := testConfig("stale")
	a, b := connect(t, cfg, ns), connect(t, cfg, ns)
	ctx := ctxFor(t)
	rec := func(status model.Status, attempts int) *model.Image {
		return &model.Image{ID: "stale1", Status: status, Attempts: attempts}
	}
	if _, _, err := a.Status().Create(ctx, rec(model.StatusQueued, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Status().Get(ctx, "stale1"); err != nil { // a remembers this revision
		t.Fatal(err)
	}
	// b finishes the image; a, a slow worker on a redelivery, then reports
	// it processing, then failed: neither may replace done.
	if err := b.Status().Put(ctx, rec(model.StatusDone, 1)); err != nil {
		t.Fatal(err)
	}
	for _, st := range []model.Status{model.StatusProcessing, model.StatusFailed} {
		if err := a.Status().Put(ctx, rec(st, 2)); err != nil {
			t.Fatal(err)
		}
		got, err := b.Status().Get(ctx, "stale1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != model.StatusDone || got.Attempts != 1 {
			t.Fatalf("after a's stale %s: %+v, want b's done record", st, got)
		}
	}
	// Fresh revisions still work: b's own successive writes.
	if err := b.Status().Put(ctx, rec(model.StatusDone, 3)); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Status().Get(ctx, "stale1"); got == nil || got.Attempts != 3 {
		t.Fatalf("a later done record: %+v", got)
	}
	// And a record a remembers as queued, moved on by b, then written by a
	// with a status that may replace it: a's write lands.
	if _, _, err := a.Status().Create(ctx, &model.Image{ID: "stale2", Status: model.StatusQueued}); err != nil {
		t.Fatal(err)
	}
	if err := b.Status().Put(ctx, &model.Image{ID: "stale2", Status: model.StatusProcessing, Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	if err := a.Status().Put(ctx, &model.Image{ID: "stale2", Status: model.StatusDone, Attempts: 2}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Status().Get(ctx, "stale2"); got == nil || got.Status != model.StatusDone || got.Attempts != 2 {
		t.Fatalf("a's done over b's processing: %+v", got)
	}
}
