package storeopen_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/ferrettest"
	"github.com/imgpipe/imgpipe/store/local"
	"github.com/imgpipe/imgpipe/store/mongo"
	"github.com/imgpipe/imgpipe/store/storeopen"
)

func TestOpenLocal(t *testing.T) {
	dataDir := t.TempDir()
	other := t.TempDir()
	for _, tc := range []struct{ url, dir string }{
		{"", filepath.Join(dataDir, "store")},
		{"local:", filepath.Join(dataDir, "store")},
		{"local://" + other + "/a", filepath.Join(other, "a")},
		{"file://" + other + "/b", filepath.Join(other, "b")},
	} {
		s, err := storeopen.Open(t.Context(), tc.url, dataDir, nil)
		if err != nil {
			t.Fatalf("Open(%q): %v", tc.url, err)
		}
		if _, ok := s.(*local.Store); !ok {
			t.Errorf("Open(%q) = %T, want *local.Store", tc.url, s)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(tc.dir, "meta.db")); err != nil {
			t.Errorf("Open(%q): no store in %s: %v", tc.url, tc.dir, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for _, url := range []string{"ftp://host/x", "local:relative/dir", "mongodb:host"} {
		if s, err := storeopen.Open(t.Context(), url, t.TempDir(), nil); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q): no error", url)
		}
	}
	if _, err := storeopen.Open(t.Context(), "", "", nil); err == nil {
		t.Error("Open of the default store without a data dir: no error")
	}
}

func TestOpenMongo(t *testing.T) {
	uri, stop, err := ferrettest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	s, err := storeopen.Open(t.Context(), strings.TrimSuffix(uri, "/")+"/opentest", "", nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if _, ok := s.(*mongo.Store); !ok {
		t.Fatalf("Open = %T, want *mongo.Store", s)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}
