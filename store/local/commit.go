package local

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// commitEvery is the shortest time between two commits while several
// writers keep the store busy. A commit costs two fdatasyncs, a meta page
// and the rewrite of every branch page it touches, whatever it holds: the
// fewer commits carry a busy pipeline's writes, the less CPU each image
// costs. On the bench's small images, bbolt's db.Batch with a 2 ms delay
// made about two commits per image, and this about one (strace counts of
// fdatasync). db.Batch holds every write for its delay, a lone writer's
// too (at 10 ms, a sequential writer managed 85 writes a second).
const commitEvery = 10 * time.Millisecond

// errClosed answers a write that comes after Close.
var errClosed = errors.New("store/local: the store is closed")

// committer gathers the store's writes into shared transactions: a group
// commit. While the store is busy (the last commit carried several
// writes), a commit waits until commitEvery after the last one began,
// gathering what arrives meanwhile; a store that is not (a lone writer,
// however fast it writes) commits each write at once. One goroutine makes
// every commit, so commits never queue on bbolt's writer lock.
type committer struct {
	db    *bolt.DB
	every time.Duration

	mu      sync.Mutex
	pending []pendingWrite
	closed  bool

	wake    chan struct{} // a write is pending, or Close was called
	stopped chan struct{} // run has returned
	commits atomic.Int64  // made so far, for tests
}

type pendingWrite struct {
	fn  func(*bolt.Tx) error
	res chan error
}

func newCommitter(db *bolt.DB, every time.Duration) *committer {
	c := &committer{db: db, every: every, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go c.run()
	return c
}

// write runs fn in the next commit and returns once that commit is durable,
// with fn's error, the commit's, or errClosed. fn may run more than once
// (when another write of its commit fails, the rest are committed again
// without it), so it must only read and write inside tx, as with db.Batch.
func (c *committer) write(fn func(*bolt.Tx) error) error {
	res := make(chan error, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errClosed
	}
	c.pending = append(c.pending, pendingWrite{fn, res})
	c.mu.Unlock()
	c.signal()
	return <-res
}

func (c *committer) signal() {
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is already due; it will see this write
	}
}

// close commits what is pending, then refuses further writes.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.signal()
	<-c.stopped
}

func (c *committer) run() {
	defer close(c.stopped)
	var last time.Time // when the last commit began
	busy := false       // it carried more than one write
	for {
		c.mu.Lock()
		idle, closed := len(c.pending) == 0, c.closed
		c.mu.Unlock()
		if idle {
			if closed {
				return
			}
			<-c.wake
			continue
		}
		if wait := time.Until(last.Add(c.every)); busy && wait > 0 && !closed {
			time.Sleep(wait)
		}
		c.mu.Lock()
		batch := c.pending
		c.pending = nil
		c.mu.Unlock()
		last, busy = time.Now(), len(batch) > 1
		c.commit(batch)
	}
}

// commit makes one transaction of batch. A write that fails rolls the
// transaction back: it then runs alone, for an answer of its own, and the
// others are committed again without it.
func (c *committer) commit(batch []pendingWrite) {
	failed := -1
	err := c.db.Update(func(tx *bolt.Tx) error {
		for i, w := range batch {
			if err := call(w.fn, tx); err != nil {
				failed = i
				return err
			}
		}
		return nil
	})
	c.commits.Add(1)
	if failed < 0 {
		for _, w := range batch {
			w.res <- err
		}
		return
	}
	alone := batch[failed]
	alone.res <- c.db.Update(func(tx *bolt.Tx) error { return call(alone.fn, tx) })
	if rest := slices.Delete(batch, failed, failed+1); len(rest) > 0 {
		c.commit(rest)
	}
}

// call runs fn, turning a panic into its error: one bad write must not
// take down the committer, and with it every writer.
func call(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store/local: a write panicked: %v", p)
		}
	}()
	return fn(tx)
}
