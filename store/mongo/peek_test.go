package mongo_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/store/mongo"
)

// Peek reads a database's identity without making anything: none for a
// database imgpipe never opened (which is still not there after), the
// store's once it was opened; the URL's mistakes are Open's.
func TestPeek(t *testing.T) {
	uri := newDatabaseURI(t)
	id, where, err := mongo.Peek(t.Context(), uri)
	if err != nil || id != "" || !strings.HasSuffix(where, uri[strings.LastIndex(uri, "/"):]) {
		t.Fatalf("Peek of a new database: %q %q %v", id, where, err)
	}
	client, err := driver.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(t.Context())
	name := uri[strings.LastIndex(uri, "/")+1:]
	if names, err := client.ListDatabaseNames(t.Context(), bson.D{}); err != nil || slices.Contains(names, name) {
		t.Fatalf("databases after Peek: %v %v; want no %s", names, err, name)
	}
	s := openStore(t, uri)
	defer s.Close()
	if s.Where() != where {
		t.Errorf("Peek names it %q, the store %q", where, s.Where())
	}
	if id, _, err := mongo.Peek(t.Context(), uri); err != nil || id != s.Identity() {
		t.Fatalf("Peek after Open: %q %v, want %q", id, err, s.Identity())
	}
	if _, _, err := mongo.Peek(t.Context(), "mongodb://h:notaport/x"); !errors.Is(err, store.ErrMisconfigured) {
		t.Errorf("Peek of a bad URL: %v, want misconfigured", err)
	}
}
