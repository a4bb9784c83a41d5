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
// Only records that are not final are kept, and any record may replace
// those (model.Replaces): a hit needs no judging, only the server's check
// that nothing was written since.
type revisions struct {
	mu  sync.Mutex
	m   map[string]uint64 // id -> sequence of its last known revision
	max int
}

func newRevisions(max int) *revisions {
	return &revisions{m: make(map[string]uint64), max: max}
}

func (r *revisions) get(id string) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq, ok := r.m[id]
	return seq, ok
}

// set records a revision. A final record is forgotten instead: nothing
// writes after it but a rare redelivery, which can afford the read, and a
// Put must judge whether it may replace it.
func (r *revisions) set(id string, seq uint64, status model.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if status.Final() {
		delete(r.m, id)
		return
	}
	if _, ok := r.m[id]; !ok && len(r.m) >= r.max {
		for k := range r.m { // any one: ids are hashes, order is random
			delete(r.m, k)
			break
		}
	}
	r.m[id] = seq
}

func (r *revisions) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, id)
}
