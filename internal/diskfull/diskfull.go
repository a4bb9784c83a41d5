// Package diskfull gives tests a disk that really fills up: a small tmpfs
// of their own, and a file that takes all of it but a little. No fake
// write error stands in: the servers and stores under test meet ENOSPC
// from the kernel, as on a full disk in production.
package diskfull

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/imgpipe/imgpipe/internal/diskspace"
)

// Tmpfs mounts a tmpfs of size bytes on a new temporary directory, for the
// test's lifetime. Mounting needs root (CAP_SYS_ADMIN); without it the
// test is skipped, saying so.
func Tmpfs(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("a full disk needs a tmpfs of the test's own, and mounting one needs root: %v", err)
	}
	// Detached, so that a file a server still holds open cannot keep it
	// mounted; registered after TempDir's removal, so it runs first.
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// Fill allocates a file in dir that leaves room bytes free, and returns
// its path: removing it makes room again.
func Fill(t testing.TB, dir string, room int64) string {
	t.Helper()
	free, err := Free(dir)
	if err != nil {
		t.Fatal(err)
	}
	if free <= room {
		t.Fatalf("diskfull: only %d bytes free in %s, asked to leave %d", free, dir, room)
	}
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, free-room); err != nil {
		t.Fatalf("diskfull: fallocate: %v", err)
	}
	return path
}

// Free is the space left in dir's file system for unprivileged writers.
func Free(dir string) (int64, error) { return diskspace.Free(dir) }
