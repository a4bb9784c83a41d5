package storetest

import (
	"context"
	"testing"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
)

// testCanceledContext checks that a store gives up on a canceled context
// rather than ignoring it.
func testCanceledContext(t *testing.T, o *opener) {
	s := o.fresh(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.PutBlob(ctx, model.OriginalKey("x"), []byte("x")); err == nil {
		t.Error("PutBlob with a canceled context: no error")
	}
	if err := s.PutImage(ctx, newImage("x", model.StatusQueued, at(0))); err == nil {
		t.Error("PutImage with a canceled context: no error")
	}
	if err := s.AppendEvents(ctx, newEvent("x", "x", at(0))); err == nil {
		t.Error("AppendEvents with a canceled context: no error")
	}
	if _, err := s.ListImages(ctx, store.ListQuery{}); err == nil {
		t.Error("ListImages with a canceled context: no error")
	}
}

// testReopen writes, closes, opens again on the same data (as a restarted
// process would) and reads everything back, including a cursor made before
// the restart.
func testReopen(t *testing.T, o *opener) {
	s := o.fresh(t)
	ctx := t.Context()
	blobs := map[string][]byte{
		model.OriginalKey("a"):          randomBytes(300<<10, 1),
		model.ResultKey("a", "default"): {},
		model.ResultKey("a", "thumb"):   randomBytes(1, 2),
	}
	for key, data := range blobs {
		checkPut(t, s, key, data)
	}
	images := []*model.Image{
		newImage("a", model.StatusDone, at(3)),
		newImage("b", model.StatusFailed, at(2)),
		newImage("c", model.StatusQueued, at(1)),
	}
	for _, img := range images {
		putImage(t, s, img)
	}
	events := []model.Event{newEvent("e1", "a", at(1)), newEvent("e2", "a", at(2)), newEvent("e3", "b", at(3))}
	appendEvents(t, s, events...)
	first, err := s.ListImages(ctx, store.ListQuery{Limit: 1})
	if err != nil || first.Next == "" {
		t.Fatalf("ListImages: next %q, %v", first.Next, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s2 := o.again(t)
	if err := s2.Ping(ctx); err != nil {
		t.Fatalf("Ping after reopen: %v", err)
	}
	for key, data := range blobs {
		checkBlob(t, s2, key, data)
	}
	for _, img := range images {
		got, err := s2.GetImage(ctx, img.ID)
		if err != nil {
			t.Fatalf("GetImage(%s) after reopen: %v", img.ID, err)
		}
		checkImage(t, got, img)
	}
	checkList(t, s2, store.ListQuery{}, []string{"a", "b", "c"})
	checkList(t, s2, store.ListQuery{Status: model.StatusFailed}, []string{"b"})
	rest, err := s2.ListImages(ctx, store.ListQuery{Limit: 5, Cursor: first.Next})
	if err != nil {
		t.Fatalf("ListImages with a cursor from before the restart: %v", err)
	}
	checkIDs(t, "page after the restart", rest.Images, []string{"b", "c"})
	got, err := s2.ImageEvents(ctx, "a")
	if err != nil {
		t.Fatalf("ImageEvents after reopen: %v", err)
	}
	checkEvents(t, "ImageEvents(a) after reopen", got, events[:2])

	// Still deduplicating, and still writable.
	appendEvents(t, s2, events[0], newEvent("e4", "a", at(4)))
	recent, err := s2.RecentEvents(ctx, 10)
	if err != nil {
		t.Fatalf("RecentEvents: %v", err)
	}
	checkEvents(t, "RecentEvents after reopen", recent, []model.Event{newEvent("e4", "a", at(4)), events[2], events[1], events[0]})
	putImage(t, s2, newImage("d", model.StatusQueued, at(4)))
	checkList(t, s2, store.ListQuery{}, []string{"d", "a", "b", "c"})
}

// testIdentity: a store keeps the identity it made at its first open, and
// another store has another (the bus refuses a process whose store is not
// the one its images are kept in by this id).
func testIdentity(t *testing.T, o *opener) {
	s := o.fresh(t)
	id := s.Identity()
	if len(id) < 16 || s.Where() == "" {
		t.Fatalf("identity %q, where %q: want an id of 16 characters or more and a place", id, s.Where())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again := o.again(t)
	if got := again.Identity(); got != id {
		t.Fatalf("identity after reopen %q, want %q", got, id)
	}
	// A copy going its own way gets an identity of its own, for good.
	renewed, err := again.Reidentify(t.Context())
	if err != nil || renewed == id || again.Identity() != renewed {
		t.Fatalf("Reidentify: %q, %v; identity now %q; want a new one (not %q)", renewed, err, again.Identity(), id)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	if got := o.again(t).Identity(); got != renewed {
		t.Fatalf("identity after Reidentify and reopen %q, want %q", got, renewed)
	}
	if other := o.fresh(t).Identity(); other == id || other == renewed || other == "" {
		t.Fatalf("another store's identity %q, want one of its own (not %q or %q)", other, id, renewed)
	}
}
