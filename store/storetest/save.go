package storetest

import (
	"testing"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
)

// testSaveImage: SaveImage stores every blob and the record, lasting across
// a reopen; blobs that change size class (database to file and back in the
// local store) end whole; and the record keeps the never-backwards rule
// while the blobs of a refused record are still stored.
func testSaveImage(t *testing.T, o *opener) {
	s := o.fresh(t)
	ctx := t.Context()
	id := "saved"
	putImage(t, s, newImage(id, model.StatusQueued, at(1)))
	// The result was stored large before, and is small now: the other way
	// round for the original.
	checkPut(t, s, model.ResultKey(id, "thumb"), randomBytes(1<<20, 1))
	checkPut(t, s, model.OriginalKey(id), randomBytes(10, 2))
	blobs := map[string][]byte{
		model.OriginalKey(id):             randomBytes(5<<20, 3),
		model.ResultKey(id, "thumb"):      randomBytes(3<<10, 4),
		model.ResultKey(id, "empty"):      {},
		model.ResultKey(id, "two-chunks"): randomBytes(300<<10, 5),
	}
	done := newImage(id, model.StatusDone, at(1))
	if err := s.SaveImage(ctx, done, blobs); err != nil {
		t.Fatalf("SaveImage: %v", err)
	}
	// Refused as a record (a done one is there), stored as blobs.
	late := map[string][]byte{model.ResultKey(id, "late"): randomBytes(100, 6)}
	if err := s.SaveImage(ctx, newImage(id, model.StatusFailed, at(1)), late); err != nil {
		t.Fatalf("SaveImage of a failed record after done: %v", err)
	}
	// A record alone.
	if err := s.SaveImage(ctx, newImage("bare", model.StatusFailed, at(2)), nil); err != nil {
		t.Fatalf("SaveImage without blobs: %v", err)
	}
	check := func(s store.Store) {
		t.Helper()
		got, err := s.GetImage(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, got, done)
		for k, data := range blobs {
			checkBlob(t, s, k, data)
		}
		checkBlob(t, s, model.ResultKey(id, "late"), late[model.ResultKey(id, "late")])
		checkList(t, s, store.ListQuery{Status: model.StatusDone}, []string{id})
		checkList(t, s, store.ListQuery{Status: model.StatusFailed}, []string{"bare"})
		checkList(t, s, store.ListQuery{Status: model.StatusQueued}, []string{})
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check(o.again(t))
}
