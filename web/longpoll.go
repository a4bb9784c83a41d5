package web

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/imgpipe/imgpipe/roles"
)

// Long polls (?wait=) look the image up again when its record is written,
// told by one watch of the status table per process. Polling remains the
// safety net, slow: a watch that is not up yet or missed a write costs
// latency, never a wrong answer.
var (
	pollFirst = 250 * time.Millisecond
	pollMax   = 2 * time.Second
)

// waiters runs that watch and wakes the long polls of the ids it reports.
// The first long poll starts it; shutdown (stopping) ends it.
type waiters struct {
	pipe     *roles.API
	stopping <-chan struct{}
	log      *slog.Logger

	start sync.Once
	mu    sync.Mutex
	byID  map[string]map[chan struct{}]struct{}
}

// wait registers a long poll on id: the channel receives when id's record
// is written. release unregisters it.
func (w *waiters) wait(id string) (woken <-chan struct{}, release func()) {
	w.start.Do(func() { go w.watch() })
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.byID == nil {
		w.byID = map[string]map[chan struct{}]struct{}{}
	}
	if w.byID[id] == nil {
		w.byID[id] = map[chan struct{}]struct{}{}
	}
	w.byID[id][ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.byID[id], ch)
		if len(w.byID[id]) == 0 {
			delete(w.byID, id)
		}
		w.mu.Unlock()
	}
}

func (w *waiters) notify(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.byID[id] {
		select {
		case ch <- struct{}{}:
		default: // already woken, not yet looked
		}
	}
}

// watch keeps the watch up until shutdown, starting it again after the
// bus comes back.
func (w *waiters) watch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-w.stopping
		cancel()
	}()
	for {
		err := w.pipe.WatchStatus(ctx, w.notify)
		if ctx.Err() != nil {
			return
		}
		w.log.Debug("status watch down; long polls fall back to polling", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
