package natsbus

import (
	"sync"

	"github.com/imgpipe/imgpipe/model"
)

// revisions remembers the last revision this process read or wrote of
// recent status records, so that a Put can go straight to its
// compare-and-set instead of reading the record first. A transformer reads
// a record, then writes "processing", then the outcome: two reads fewer per
// image. A stale entry costs nothing but the read it tried to save: the
// server refuses the write (wrong last sequence) and Put reads afresh.
//
// Only records that are not final are kept, and any record of their run
// may replace those (model.Supersedes): a hit of the same run needs no
// judging, only the server's check that nothing was written since.
type revisions struct {
	mu  sync.Mutex
	m   map[string]revision // by id
	max int
}

// revision is what a Put needs of a record it does not read: its sequence,
// and the attempts it counted in its run, which a record of the same run
// replacing it keeps.
type revision struct {
	seq               uint64
	attempts, retries int
}

func newRevisions(max int) *revisions {
	return &revisions{m: make(map[string]revision), max: max}
}

func (r *revisions) get(id string) (revision, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rev, ok := r.m[id]
	return rev, ok
}

// set records a revision. A final record is forgotten instead: nothing
// writes after it but a rare redelivery, which can afford the read, and a
// Put must judge whether it may replace it.
func (r *revisions) set(id string, seq uint64, img *model.Image) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if img.Status.Final() {
		delete(r.m, id)
		return
	}
	if _, ok := r.m[id]; !ok && len(r.m) >= r.max {
		for k := range r.m { // any one: ids are hashes, order is random
			delete(r.m, k)
			break
		}
	}
	r.m[id] = revision{seq, img.Attempts, img.Retries}
}

func (r *revisions) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, id)
}
