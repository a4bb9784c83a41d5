package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// lockDataDir holds an exclusive lock on dir/LOCK until release: two
// processes on one data dir would run two JetStream servers on the same
// files, which corrupts their state. bbolt's own lock on the store comes
// later, after the second server has opened the streams, and not at all
// when the store lives elsewhere. The lock is the kernel's (flock), so a
// process that dies, even by SIGKILL, leaves none behind.
func lockDataDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(f.Name())
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another imgpipe process (%s): give each process its own --data-dir",
				dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("data dir %s: lock: %w", dir, err)
	}
	// Who holds it, for the message above; the lock is the flock, not this.
	if err := f.Truncate(0); err == nil {
		host, _ := os.Hostname()
		_, _ = fmt.Fprintf(f, "pid %d on %s", os.Getpid(), host)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}
