package local_test

import (
	"sync"
	"testing"

	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/store/local"
	"github.com/imgpipe/imgpipe/store/storetest"
)

func TestConformance(t *testing.T) {
	var mu sync.Mutex
	dirs := map[*testing.T]string{} // the directory of each test's store
	open := func(t *testing.T, dir string) store.Store {
		t.Helper()
		s, err := local.Open(dir, nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	}
	storetest.Run(t,
		func(t *testing.T) store.Store {
			dir := t.TempDir()
			mu.Lock()
			dirs[t] = dir
			mu.Unlock()
			return open(t, dir)
		},
		func(t *testing.T) store.Store {
			mu.Lock()
			dir := dirs[t]
			mu.Unlock()
			return open(t, dir)
		})
}
