package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/imgpipe/imgpipe/store"
)

// Tests of where blobs live (database or file), which the conformance
// suite cannot see through the interface.

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func blobOf(n int, fill byte) []byte { return bytes.Repeat([]byte{fill}, n) }

// checkPlace checks that key is in exactly the place its size says, and
// reads back as want.
func checkPlace(t *testing.T, s *Store, key string, want []byte) {
	t.Helper()
	inDB, err := s.hasSmall(key)
	if err != nil {
		t.Fatal(err)
	}
	inFile, err := s.hasFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if small := len(want) <= smallBlobMax; inDB != small || inFile == small {
		t.Fatalf("%d-byte blob: in database %v, in file %v; want only in the %s", len(want), inDB, inFile, map[bool]string{true: "database", false: "file"}[small])
	}
	got, err := s.GetBlob(t.Context(), key)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("GetBlob: %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
}

// TestBlobSizeClasses: an overwrite that moves a blob between the database
// and a file leaves no copy behind in the other place.
func TestBlobSizeClasses(t *testing.T) {
	s := openTest(t, t.TempDir())
	const key = "results/img/default"
	for i, n := range []int{10, smallBlobMax + 1, smallBlobMax, 0, 2 * smallBlobMax, 2 * smallBlobMax, 1} {
		data := blobOf(n, byte(i))
		if err := s.PutBlob(t.Context(), key, data); err != nil {
			t.Fatalf("PutBlob(%d bytes): %v", n, err)
		}
		checkPlace(t, s, key, data)
	}
}

// TestBlobStaleFileShadowed: a crash between committing a small blob and
// removing the large file it replaces can leave the file behind (or bring
// it back); the database copy must win, across a restart and until the
// next large write replaces the file.
func TestBlobStaleFileShadowed(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	ctx := t.Context()
	const key = "originals/img"
	large, small := blobOf(smallBlobMax+10, 'L'), blobOf(10, 's')
	if err := s.PutBlob(ctx, key, large); err != nil {
		t.Fatal(err)
	}
	_, path := s.blobPath(key)
	stale, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(ctx, key, small); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, stale, 0o640); err != nil { // the lost unlink
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	if got, err := s.GetBlob(ctx, key); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("GetBlob after restart: %d bytes, %v; want the small blob", len(got), err)
	}
	newer := blobOf(smallBlobMax+20, 'N')
	if err := s.PutBlob(ctx, key, newer); err != nil {
		t.Fatal(err)
	}
	checkPlace(t, s, key, newer)
}

// TestBlobMoveUnderReaders: while a key moves back and forth between the
// database and a file, readers always find it, old or new, never missing.
func TestBlobMoveUnderReaders(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := t.Context()
	const key = "originals/moving"
	versions := [][]byte{blobOf(100, 'a'), blobOf(smallBlobMax+100, 'b')}
	if err := s.PutBlob(ctx, key, versions[0]); err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			for !done.Load() {
				got, err := s.GetBlob(ctx, key)
				if err == nil && !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
					err = fmt.Errorf("GetBlob: %d bytes matching no version", len(got))
				}
				if err == nil {
					var ok bool
					if ok, err = s.HasBlob(ctx, key); err == nil && !ok {
						err = errors.New("HasBlob: false")
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range 30 {
		if err := s.PutBlob(ctx, key, versions[(i+1)%2]); err != nil {
			t.Fatal(err)
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkPlace(t, s, key, versions[0])
}

// TestBlobMissing: a key in neither place is not found, through the locked
// second look.
func TestBlobMissing(t *testing.T) {
	s := openTest(t, t.TempDir())
	if _, err := s.GetBlob(t.Context(), "none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetBlob: %v, want ErrNotFound", err)
	}
	if ok, err := s.HasBlob(t.Context(), "none"); ok || err != nil {
		t.Fatalf("HasBlob: %v, %v", ok, err)
	}
	if n := len(s.blobLocks.locks); n != 0 {
		t.Fatalf("%d key locks left behind", n)
	}
}
