package diskspace_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/imgpipe/imgpipe/internal/diskfull"
	"github.com/imgpipe/imgpipe/internal/diskspace"
)

// TestSizeAndFree reads a tmpfs of known size, then writes to it.
func TestSizeAndFree(t *testing.T) {
	dir := diskfull.Tmpfs(t, 64<<20)
	size, err := diskspace.Size(dir)
	if err != nil || size != 64<<20 {
		t.Fatalf("size %d, %v; want %d", size, err, 64<<20)
	}
	before, err := diskspace.Free(dir)
	if err != nil || before != size {
		t.Fatalf("free on an empty tmpfs: %d, %v; want %d", before, err, size)
	}
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, 16<<20); err != nil {
		t.Fatal(err)
	}
	if after, err := diskspace.Free(dir); err != nil || after != before-16<<20 {
		t.Fatalf("free after 16 MiB: %d, %v; want %d", after, err, before-16<<20)
	}
	if _, err := diskspace.Free(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing directory: no error")
	}
}
