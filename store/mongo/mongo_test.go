package mongo_test

import (
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"

	"github.com/imgpipe/imgpipe/internal/ferrettest"
	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/store/mongo"
	"github.com/imgpipe/imgpipe/store/storetest"
)

// serverURI is the embedded FerretDB every test of the package shares; each
// store gets its own database on it.
var serverURI string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imgpipe-ferretdb-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	uri, stop, err := ferrettest.Start(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverURI = uri
	code := m.Run()
	stop()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var databases atomic.Int64

// newDatabaseURI returns the server's URI naming a database no test used.
func newDatabaseURI(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(serverURI)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = fmt.Sprintf("/test%03d", databases.Add(1))
	return u.String()
}

func openStore(t *testing.T, uri string) *mongo.Store {
	t.Helper()
	s, err := mongo.Open(t.Context(), uri, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, newDatabaseURI, func(t *testing.T, uri string) store.Store { return openStore(t, uri) })
}
