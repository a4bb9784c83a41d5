package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
)

func testPing(t *testing.T, o opener) {
	s := o.fresh(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// Sizes around the edges: empty, one byte, more than one GridFS chunk
// (255 KiB), and a large photo.
var blobSizes = []int{0, 1, 300 << 10, 5 << 20}

func testBlobRoundTrip(t *testing.T, o opener) {
	s := o.fresh(t)
	ctx := t.Context()
	for i, n := range blobSizes {
		key := model.OriginalKey(fmt.Sprintf("size-%d", n))
		data := randomBytes(n, uint64(i))
		if err := s.PutBlob(ctx, key, data); err != nil {
			t.Fatalf("PutBlob %d bytes: %v", n, err)
		}
		checkBlob(t, s, key, data)
	}
	// Keys are opaque strings: odd characters must not matter.
	key := model.ResultKey("ünïcode id with spaces", "../variant")
	checkPut(t, s, key, []byte("odd key"))
}

func testBlobOverwrite(t *testing.T, o opener) {
	s := o.fresh(t)
	key := model.ResultKey("img", model.DefaultVariant)
	// Shrinking from two chunks to one catches stale chunks surviving; growing
	// catches a short read of the new version.
	for i, data := range [][]byte{
		randomBytes(300<<10, 10),
		randomBytes(1, 11),
		randomBytes(600<<10, 12),
		randomBytes(600<<10, 12), // same bytes again: idempotent
		{},
	} {
		t.Logf("write %d: %d bytes", i, len(data))
		checkPut(t, s, key, data)
	}
}

func testBlobNotFound(t *testing.T, o opener) {
	s := o.fresh(t)
	ctx := t.Context()
	checkPut(t, s, model.ResultKey("a", "default"), []byte("x"))
	for _, key := range []string{
		model.OriginalKey("missing"),
		model.ResultKey("a", "defaul"), // a prefix of a stored key
		model.ResultKey("a", "default2"),
		"results/a",
	} {
		if _, err := s.GetBlob(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetBlob(%q): err = %v, want store.ErrNotFound", key, err)
		}
		if ok, err := s.HasBlob(ctx, key); err != nil || ok {
			t.Errorf("HasBlob(%q) = %v, %v; want false, nil", key, ok, err)
		}
	}
}

func checkPut(t *testing.T, s store.Store, key string, data []byte) {
	t.Helper()
	if err := s.PutBlob(t.Context(), key, data); err != nil {
		t.Fatalf("PutBlob(%q, %d bytes): %v", key, len(data), err)
	}
	checkBlob(t, s, key, data)
}

func checkBlob(t *testing.T, s store.Store, key string, want []byte) {
	t.Helper()
	got, err := s.GetBlob(t.Context(), key)
	if err != nil {
		t.Fatalf("GetBlob(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("GetBlob(%q): got %d bytes, want %d bytes (first difference at %d)", key, len(got), len(want), firstDiff(got, want))
	}
	if ok, err := s.HasBlob(t.Context(), key); err != nil || !ok {
		t.Fatalf("HasBlob(%q) = %v, %v; want true, nil", key, ok, err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
