// Package storetest is the conformance suite every store.Store must pass.
// Implementations run it from their own tests:
//
//	storetest.Run(t, openFresh, reopenSame)
//
// The suite checks behaviour through the interface only, so a store passing
// it can replace another without the roles noticing.
package storetest

import (
	"sync"
	"testing"

	"github.com/imgpipe/imgpipe/store"
)

// Run runs the suite as subtests of t.
//
// newPlace names somewhere empty for the test t's store (a directory, a
// database URI); open opens a store there. The suite opens a place a
// second time to see what survives a restart (a new process in effect: it
// has closed the first store by then), and closes every store it opens.
//
// Times in the suite are whole milliseconds: MongoDB keeps no finer, so
// stores are only required to keep milliseconds. Subtests run one after the
// other, so that a server stopped by the caller's defer is still there.
func Run(t *testing.T, newPlace func(t *testing.T) string, open func(t *testing.T, place string) store.Store) {
	o := &opener{newPlace: newPlace, open: open, places: map[*testing.T]string{}}
	tests := []struct {
		name string
		run  func(*testing.T, *opener)
	}{
		{"Ping", testPing},
		{"Blobs/RoundTrip", testBlobRoundTrip},
		{"Blobs/Overwrite", testBlobOverwrite},
		{"Blobs/NotFound", testBlobNotFound},
		{"Blobs/OverwriteReopen", testBlobOverwriteReopen},
		{"Blobs/ConcurrentOverwrite", testBlobConcurrentOverwrite},
		{"Images/PutGet", testImagePutGet},
		{"Images/Update", testImageUpdate},
		{"Images/NeverBackwards", testImageNeverBackwards},
		{"Images/RaceToInsert", testImageRaceToInsert},
		{"Images/Order", testImageOrder},
		{"Images/StatusFilter", testImageStatusFilter},
		{"Images/Pages", testImagePages},
		{"Images/Limits", testImageLimits},
		{"Images/BadCursor", testImageBadCursor},
		{"Images/SaveWithBlobs", testSaveImage},
		{"Events/Dedup", testEventDedup},
		{"Events/ImageEvents", testImageEvents},
		{"Events/Recent", testRecentEvents},
		{"Concurrent", testConcurrent},
		{"CanceledContext", testCanceledContext},
		{"Reopen", testReopen},
		{"Identity", testIdentity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, o) })
	}
}

// opener hands stores to subtests and closes them when the subtest ends.
type opener struct {
	newPlace func(t *testing.T) string
	open     func(t *testing.T, place string) store.Store

	mu     sync.Mutex
	places map[*testing.T]string // where each subtest's fresh store is
}

// fresh returns a new, empty store.
func (o *opener) fresh(t *testing.T) *handle {
	t.Helper()
	place := o.newPlace(t)
	o.mu.Lock()
	o.places[t] = place
	o.mu.Unlock()
	return o.track(t, o.open(t, place))
}

// again returns a store on the data of the one fresh returned for t.
func (o *opener) again(t *testing.T) *handle {
	t.Helper()
	o.mu.Lock()
	place := o.places[t]
	o.mu.Unlock()
	return o.track(t, o.open(t, place))
}

func (o *opener) track(t *testing.T, s store.Store) *handle {
	t.Helper()
	if s == nil {
		t.Fatal("open returned a nil store")
	}
	h := &handle{Store: s}
	t.Cleanup(func() {
		if !h.closed {
			if err := h.Store.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})
	return h
}

// handle is a store that remembers being closed, so that cleanup closes it
// exactly once.
type handle struct {
	store.Store
	closed bool
}

func (h *handle) Close() error {
	h.closed = true
	return h.Store.Close()
}
