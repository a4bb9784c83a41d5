package local_test

import (
	"testing"

	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/store/local"
	"github.com/imgpipe/imgpipe/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) string { return t.TempDir() },
		func(t *testing.T, dir string) store.Store {
			t.Helper()
			s, err := local.Open(dir, nil)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		})
}
