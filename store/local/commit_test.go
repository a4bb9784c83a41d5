package local

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var testBucket = []byte("t")

// openCommitter gives a committer on a fresh database with one bucket.
func openCommitter(t *testing.T, every time.Duration) (*committer, *bolt.DB) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(testBucket); return err }); err != nil {
		t.Fatal(err)
	}
	c := newCommitter(db, every)
	t.Cleanup(func() { c.close(); _ = db.Close() })
	return c, db
}

func put(k string) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error { return tx.Bucket(testBucket).Put([]byte(k), []byte("v:"+k)) }
}

// stored fails the test unless every key is in the database.
func stored(t *testing.T, db *bolt.DB, keys ...string) {
	t.Helper()
	_ = db.View(func(tx *bolt.Tx) error {
		for _, k := range keys {
			if got := string(tx.Bucket(testBucket).Get([]byte(k))); got != "v:"+k {
				t.Errorf("key %s holds %q, want %q", k, got, "v:"+k)
			}
		}
		return nil
	})
}

// held starts a write whose function blocks until release is called, and
// returns once the committer is inside it: writes made meanwhile queue. A
// test that fails before releasing it is released at its end, so that
// closing the database does not wait on it for ever.
func held(t *testing.T, c *committer, key string) (release func(), done chan error) {
	t.Helper()
	inside, gate, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var once sync.Once
	go func() {
		done <- c.write(func(tx *bolt.Tx) error {
			once.Do(func() { close(inside) })
			<-gate
			return put(key)(tx)
		})
	}()
	<-inside
	var opened sync.Once
	release = func() { opened.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return release, done
}

// waitPending waits until n writes are queued behind the commit under way.
func waitPending(t *testing.T, c *committer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.pending)
		c.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// within fails the test if do has not returned after a long while: a
// committer that holds a write it should commit shows as this failure, not
// as the whole package timing out.
func within(t *testing.T, what string, do func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); do() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: still waiting after 30s", what)
	}
}

// writeAll starts one writer per key and returns their errors by key.
func writeAll(c *committer, fns map[string]func(*bolt.Tx) error) func() map[string]error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := map[string]error{}
	for k, fn := range fns {
		wg.Go(func() {
			err := c.write(fn)
			mu.Lock()
			errs[k] = err
			mu.Unlock()
		})
	}
	return func() map[string]error { wg.Wait(); return errs }
}

// behindHeld queues fns behind a held commit (of the key "first"), lets it
// go, and returns their errors by key: the commits that follow are then
// the test's to count.
func behindHeld(t *testing.T, c *committer, fns map[string]func(*bolt.Tx) error) map[string]error {
	t.Helper()
	release, first := held(t, c, "first")
	wait := writeAll(c, fns)
	waitPending(t, c, len(fns))
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	return wait()
}

// noErrors fails the test for every write that returned an error.
func noErrors(t *testing.T, errs map[string]error) {
	t.Helper()
	for k, err := range errs {
		if err != nil {
			t.Errorf("write %s: %v", k, err)
		}
	}
}

// A write to a quiet store commits at once. One that comes within
// commitEvery of the last commit's start is held to share the next
// commit with whatever else comes, a lone writer's too: with an hour
// between busy commits, the second and third writes here wait for Close,
// and go together.
func TestCommitterHoldsWritesWhileBusy(t *testing.T) {
	c, db := openCommitter(t, time.Hour)
	within(t, "a write to a quiet store", func() {
		if err := c.write(put("0")); err != nil {
			t.Error(err)
		}
	})
	wait := writeAll(c, map[string]func(*bolt.Tx) error{"1": put("1")})
	waitPending(t, c, 1)
	more := writeAll(c, map[string]func(*bolt.Tx) error{"2": put("2")})
	waitPending(t, c, 2)
	if n := c.commits.Load(); n != 1 {
		t.Errorf("%d commits before Close, want 1: the writes after the first are held", n)
	}
	within(t, "close", c.close)
	noErrors(t, wait())
	noErrors(t, more())
	if n := c.commits.Load(); n != 2 {
		t.Errorf("%d commits, want 2: the first at once, then the held two together", n)
	}
	stored(t, db, "0", "1", "2")
}

// Writers that arrive while a commit is being made share the next one; once
// the store is busy, a write is held to gather others (here until Close,
// with an hour between busy commits) instead of committing alone.
func TestCommitterGroupsConcurrentWrites(t *testing.T) {
	c, db := openCommitter(t, time.Hour)
	fns := map[string]func(*bolt.Tx) error{}
	var keys []string
	for i := range 20 {
		k := fmt.Sprint("a", i)
		fns[k], keys = put(k), append(keys, k)
	}
	noErrors(t, behindHeld(t, c, fns))
	if n := c.commits.Load(); n != 2 {
		t.Errorf("%d commits, want 2: the held one, then the 20 queued behind it together", n)
	}

	// The last commit carried 20 writes: fewer wait for more, and go
	// together when Close ends the wait.
	fns = map[string]func(*bolt.Tx) error{}
	for i := range 10 {
		k := fmt.Sprint("b", i)
		fns[k], keys = put(k), append(keys, k)
	}
	wait := writeAll(c, fns)
	waitPending(t, c, 10)
	within(t, "close", c.close)
	noErrors(t, wait())
	if n := c.commits.Load(); n != 3 {
		t.Errorf("%d commits, want 3: the 10 writes of a busy store share one", n)
	}
	stored(t, db, append(keys, "first")...)
}

// No commit carries more than maxBatch writes; the rest go in the next.
func TestCommitterCapsTheBatch(t *testing.T) {
	c, db := openCommitter(t, 0)
	c.maxBatch = 2
	noErrors(t, behindHeld(t, c, map[string]func(*bolt.Tx) error{"1": put("1"), "2": put("2"), "3": put("3"), "4": put("4"), "5": put("5")}))
	if n := c.commits.Load(); n != 4 {
		t.Errorf("%d commits, want 4: the held one, then 2, 2 and 1", n)
	}
	stored(t, db, "first", "1", "2", "3", "4", "5")
}

// Writers that write again as soon as their commit returns are not held
// for commitEvery: once as many are back as the last commit carried, and
// they are a full batch, the next commit goes. With an hour between busy
// commits, these rounds end only if each commit goes as soon as all eight
// writers are back.
func TestCommitterWritersInALoopAreNotHeld(t *testing.T) {
	c, db := openCommitter(t, time.Hour)
	release, first := held(t, c, "first")
	const writers, rounds = fullBatch, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				errs <- c.write(put(fmt.Sprintf("w%d.%d", w, r)))
			}
		})
	}
	waitPending(t, c, writers) // the first round queues behind the held write
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	within(t, "the writers' rounds", wg.Wait)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := c.commits.Load(); n != 1+rounds {
		t.Errorf("%d commits, want %d: the held write, then one per round", n, 1+rounds)
	}
	for w := range writers {
		for r := range rounds {
			stored(t, db, fmt.Sprintf("w%d.%d", w, r))
		}
	}
}

// A write that fails or panics gets its own error; the writes it shared a
// commit with are committed without it, and the committer goes on.
func TestCommitterFailedWriteFailsAlone(t *testing.T) {
	c, db := openCommitter(t, 0)
	errBad := errors.New("bad write")
	errs := behindHeld(t, c, map[string]func(*bolt.Tx) error{
		"ok1":   put("ok1"),
		"bad":   func(tx *bolt.Tx) error { _ = put("bad")(tx); return errBad },
		"panic": func(*bolt.Tx) error { panic("boom") },
		"ok2":   put("ok2"),
	})
	if !errors.Is(errs["bad"], errBad) {
		t.Errorf("failing write: %v, want its own error", errs["bad"])
	}
	if err := errs["panic"]; err == nil || !strings.Contains(err.Error(), "panicked: boom") {
		t.Errorf("panicking write: %v, want an error naming the panic", err)
	}
	if errs["ok1"] != nil || errs["ok2"] != nil {
		t.Errorf("good writes failed: %v, %v", errs["ok1"], errs["ok2"])
	}
	stored(t, db, "first", "ok1", "ok2")
	_ = db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(testBucket).Get([]byte("bad")); v != nil {
			t.Errorf("the failed write's put was committed: %q", v)
		}
		return nil
	})
	if err := c.write(put("after")); err != nil {
		t.Fatalf("write after the failures: %v", err)
	}
	stored(t, db, "after")
}

// Close commits the writes queued before it, returns only then, and
// refuses new ones.
func TestCommitterCloseCommitsQueuedWrites(t *testing.T) {
	c, db := openCommitter(t, 0)
	release, first := held(t, c, "first")
	wait := writeAll(c, map[string]func(*bolt.Tx) error{"q1": put("q1"), "q2": put("q2")})
	waitPending(t, c, 2)
	closed := make(chan struct{})
	go func() { c.close(); close(closed) }()
	for {
		if _, isClosed := c.state(); isClosed {
			break
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-closed:
		t.Fatal("close returned while a commit was under way")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	within(t, "close", func() { <-closed })
	stored(t, db, "first", "q1", "q2") // before close returned, not just eventually
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	noErrors(t, wait())
	if err := c.write(put("late")); !errors.Is(err, errClosed) {
		t.Errorf("write after close: %v, want errClosed", err)
	}
}
