package local

import (
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// commitEvery is how long a busy store gathers writes into one commit. A
// commit costs two fdatasyncs, a meta page and the rewrite of every branch
// page it touches, whatever it holds: the fewer commits carry a busy
// pipeline's writes, the less CPU each image costs. On the bench's small
// images (`imgpipe dev`, 4 runs each way), the rule before this one, which
// committed at once after a commit of one write, made about one commit per
// image; gathering made the pipeline 17% faster on one core (263-271
// images a second against 223-240) for 9% less CPU per image (3.54-3.64 ms
// against 3.86-4.00), and 5% faster on two for 4% less. Rules that counted
// writes instead of time (gather only after a commit of several writes, or
// during which writes came) made no difference there: the writes come one
// by one, at their writers' pace.
const commitEvery = 10 * time.Millisecond

// fullBatch is as many writes as a commit needs to go before commitEvery:
// enough to share its cost, as loopers do (see gather).
const fullBatch = 8

// errClosed answers a write that comes after Close.
var errClosed = errors.New("store/local: the store is closed")

// maxBatch caps the writes in one commit, as bbolt's MaxBatchSize does:
// a transaction holding thousands of blobs would hold its writers' memory
// and, should one write fail, be made again.
const maxBatch = 1000

// committer gathers the store's writes into shared transactions: a group
// commit. A store that is not busy (its last commit began commitEvery ago
// or more) commits a write at once. A busy one gathers the writes that
// arrive until commitEvery after its last commit began, or until a full
// batch is pending: fullBatch, or as many as the last commit carried if
// more (see gather). One goroutine makes every commit, so commits never
// queue on bbolt's writer lock.
//
// So a lone writer writing back to back is held to a commit every
// commitEvery, as are fewer than fullBatch writers in a loop, each round
// (BenchmarkAppendEvents, -cpu 1: one writer went from 3,550 writes a
// second to 94; 8 and 32 writers stayed at about 22,000 and 60,000). The
// roles write from pools of workers (save2db 16, the logger 32), and at
// their pace each write waits for up to commitEvery.
type committer struct {
	db       *bolt.DB
	every    time.Duration
	maxBatch int

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
	c := &committer{db: db, every: every, maxBatch: maxBatch, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
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
	lastSize := 0      // how many writes it carried
	for {
		pending, closed := c.state()
		if pending == 0 {
			if closed {
				return
			}
			<-c.wake
			continue
		}
		if busy := time.Since(last) < c.every; busy && !closed {
			c.gather(last.Add(c.every), max(lastSize, fullBatch))
		}
		c.mu.Lock()
		n := min(len(c.pending), c.maxBatch)
		batch := slices.Clone(c.pending[:n])
		c.pending = slices.Delete(c.pending, 0, n)
		c.mu.Unlock()
		last, lastSize = time.Now(), len(batch)
		c.commit(batch)
	}
}

// gather waits until deadline or until enough writes are pending.
// Writers that write again as soon as their commit returns (a loop, a
// pool of workers with a backlog) are all back long before the deadline,
// and when they are as many as the last commit carried, holding them
// longer would only slow them down; writers that come and go as their own
// work allows seldom reach that many, and share the commit at the
// deadline. Looking back further (the largest of several commits) would
// let one extra writer, joining the loopers now and then, keep them at
// the deadline's pace for good.
func (c *committer) gather(deadline time.Time, enough int) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		pending, closed := c.state()
		if pending >= enough || closed {
			return
		}
		select {
		case <-c.wake:
		case <-timer.C:
			return
		}
	}
}

func (c *committer) state() (pending int, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending), c.closed
}

// commit makes one transaction of batch. A write that fails rolls the
// transaction back: the others are committed again without it, then it
// runs alone, for an answer of its own.
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
	if rest := slices.Delete(batch, failed, failed+1); len(rest) > 0 {
		c.commit(rest)
	}
	alone.res <- c.db.Update(func(tx *bolt.Tx) error { return call(alone.fn, tx) })
	c.commits.Add(1)
}

// call runs fn, turning a panic into its error, stack included: one bad
// write must not take down the committer, and with it every writer.
func call(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store/local: a write panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return fn(tx)
}
