package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
)

func testPing(t *testing.T, o *opener) {
	s := o.fresh(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// Sizes around the edges: empty, one byte, more than one GridFS chunk
// (255 KiB), and a large photo.
var blobSizes = []int{0, 1, 300 << 10, 5 << 20}

func testBlobRoundTrip(t *testing.T, o *opener) {
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

func testBlobOverwrite(t *testing.T, o *opener) {
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

func testBlobNotFound(t *testing.T, o *opener) {
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

// testBlobOverwriteReopen overwrites blobs across sizes where stores change
// how they keep a blob (a GridFS chunk is 255 KiB; the local store keeps
// small blobs in its database and large ones in files) and checks that the
// last version, and only it, is there after a restart.
func testBlobOverwriteReopen(t *testing.T, o *opener) {
	s := o.fresh(t)
	sizes := []int{0, 1, 255 << 10, 256 << 10, 256<<10 + 1, 300 << 10, 1 << 20}
	last := map[string][]byte{}
	// Each key walks all sizes, wrapping around, from its own start, so
	// that the walks end on each kind of move: 1 MiB to 0, 256 KiB to one
	// byte more, 300 KiB to 1 MiB, 0 to 1.
	for k, start := range []int{1, 5, 0, 2} {
		key := model.ResultKey(fmt.Sprintf("img-%d", k), model.DefaultVariant)
		for i := range sizes {
			n := sizes[(start+i)%len(sizes)]
			last[key] = randomBytes(n, uint64(100*k+i))
			checkPut(t, s, key, last[key])
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := o.again(t)
	for key, data := range last {
		checkBlob(t, s2, key, data)
	}
}

// testBlobConcurrentOverwrite has writers store different versions, small
// and large, under one key at once: whichever wins, the key ends with one
// whole version.
func testBlobConcurrentOverwrite(t *testing.T, o *opener) {
	s := o.fresh(t)
	key := model.OriginalKey("contended")
	versions := make([][]byte, 6)
	for i := range versions {
		n := 1000 + i
		if i%2 == 1 {
			n = 300<<10 + i
		}
		versions[i] = randomBytes(n, uint64(200+i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(versions))
	for _, data := range versions {
		wg.Go(func() { errs <- s.PutBlob(t.Context(), key, data) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("PutBlob: %v", err)
		}
	}
	got, err := s.GetBlob(t.Context(), key)
	if err != nil {
		t.Fatalf("GetBlob: %v", err)
	}
	if !slices.ContainsFunc(versions, func(v []byte) bool { return bytes.Equal(got, v) }) {
		t.Fatalf("GetBlob: %d bytes matching none of the versions written", len(got))
	}
	if ok, err := s.HasBlob(t.Context(), key); err != nil || !ok {
		t.Fatalf("HasBlob = %v, %v; want true, nil", ok, err)
	}
}
