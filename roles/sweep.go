package roles

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
)

// stageSweeper runs beside save2db and clears staged blobs that nothing in
// the pipeline will clear. save2db deletes an image's blobs once it has
// stored them, but some are staged for images the pipeline never took: an
// upload refused with a 503 after its original was staged (its transform
// could not be queued), which a client that retries stages again under the
// same key, and one that gives up leaves for good, since staged blobs have
// no expiry (a TTL could lose an image held up by a long outage).
//
// The same goes for the variants a failed attempt rendered before another
// variant failed: the failed record names no result, and save2db deletes
// only what the record names.
//
// A blob staged after or more before the stage's latest write (the bus's
// clock: this host's may be off) is an orphan when nothing still needs it:
// no transform or save message for its image is queued, and either the
// status table has no record of the image and the store holds it not at
// all or as final (everything it names stored), or the image has ended and
// the store holds it as it ended. It is deleted only if it was not
// staged again since it was listed (DeleteVersion), so an upload that
// stages the same key meanwhile keeps its bytes. Several save2db processes
// may sweep at once: each check and delete is safe to repeat.
type stageSweeper struct {
	deps  Deps
	every time.Duration
	after time.Duration

	stop chan struct{}
	done sync.WaitGroup
}

// Sweep timing: hourly, for blobs staged over an hour ago. An upload's
// transform is queued milliseconds after its bytes are staged; an hour
// leaves room for any retry of a refused upload.
const (
	sweepEvery = time.Hour
	sweepAfter = time.Hour
	// sweepFirst lets a process that just started settle (its consumers
	// catch up) before the first sweep.
	sweepFirst = time.Minute
)

// NewStageSweeper sweeps the stage every hour; it runs with save2db.
func NewStageSweeper(d Deps) Service {
	return &stageSweeper{deps: d, every: sweepEvery, after: sweepAfter}
}

func (s *stageSweeper) Name() string { return "stage sweeper" }

func (s *stageSweeper) Start(context.Context) error {
	s.stop = make(chan struct{})
	s.done.Go(func() { s.loop(sweepFirst) })
	return nil
}

func (s *stageSweeper) Stop(context.Context) error {
	close(s.stop)
	s.done.Wait()
	return nil
}

func (s *stageSweeper) loop(first time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	next := time.NewTimer(first)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-next.C:
		}
		n, err := s.sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.deps.Log.Warn("stage sweep stopped until the next", "cleared", n, "next_in", s.every, "err", err)
		case n > 0:
			s.deps.Log.Info("stage sweep cleared blobs no role would", "cleared", n)
		}
		next.Reset(s.every)
	}
}

// sweep clears the orphans staged s.after or more before the stage's
// latest write and returns how many. A blob it cannot judge (a record it
// cannot read, a store error about that one image) is skipped, not the
// rest of the sweep with it: listed oldest first, it would stop every
// sweep at the same place. An outage stops the sweep.
func (s *stageSweeper) sweep(ctx context.Context) (int, error) {
	cleared := 0
	err := s.deps.Bus.Stage().Staged(ctx, s.after, func(blob bus.StagedBlob) error {
		id, ok := model.KeyImage(blob.Key)
		if !ok {
			return nil // not an image's blob: not ours to judge
		}
		orphan, err := s.orphaned(ctx, id)
		if err == nil && orphan {
			var deleted bool
			if deleted, err = s.deps.Bus.Stage().DeleteVersion(ctx, blob.Key, blob.Version); deleted {
				cleared++
				s.deps.Metrics.Handled.WithLabelValues("save2db", "stage_swept").Inc()
				s.deps.Log.Info("cleared an orphaned staged blob", "key", blob.Key, "staged", blob.Written)
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, bus.ErrUnavailable), errors.Is(err, store.ErrUnavailable), ctx.Err() != nil:
			return err
		default:
			s.deps.Log.Warn("stage sweep skipped a blob", "key", blob.Key, "err", err)
		}
		return nil
	})
	return cleared, err
}

// orphaned tells whether nothing in the pipeline needs image id's staged
// blobs any more.
func (s *stageSweeper) orphaned(ctx context.Context, id string) (bool, error) {
	cur, err := s.deps.Bus.Status().Get(ctx, id)
	switch {
	case err == nil && !cur.Status.Final():
		return false, nil // on its way: its own path clears its blobs
	case err != nil && !errors.Is(err, bus.ErrNotFound):
		return false, err
	case err != nil:
		cur = nil
	}
	// Work still queued will read them.
	for _, w := range []struct {
		q       bus.Queue
		subject string
	}{{bus.Transform, id}, {bus.Save, saveAccepted + "." + id}, {bus.Save, saveFinal + "." + id}} {
		if queued, err := s.deps.Bus.Queued(ctx, w.q, w.subject); err != nil || queued {
			return false, err
		}
	}
	img, err := s.deps.Store.GetImage(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return cur == nil, nil // never accepted; or ended, and its save still to come
	case err != nil:
		return false, err
	}
	if cur != nil {
		// Ended, and stored as it ended: every blob the record names is
		// stored, and a blob it does not name is a variant that a failed
		// attempt rendered before another variant failed, which nothing
		// reads (the image answers its failure; a new run renders anew).
		// save2db deletes only the blobs the record names.
		return img.Status == cur.Status && img.Retries == cur.Retries, nil
	}
	// Stored as final, every blob it names is stored. Stored as queued
	// with no work behind it is a record this sweep cannot explain: keep
	// the bytes.
	return img.Status.Final(), nil
}
