package ferrettest_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/imgpipe/imgpipe/internal/ferrettest"
)

// Two servers side by side, each reachable, each with its own data, and
// stop safe to call twice.
func TestStart(t *testing.T) {
	var uris []string
	for range 2 {
		uri, stop, err := ferrettest.Start(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		t.Cleanup(stop)
		uris = append(uris, uri)
	}
	if uris[0] == uris[1] {
		t.Fatalf("both servers at %s", uris[0])
	}
	for i, uri := range uris {
		client, err := mongo.Connect(options.Client().ApplyURI(uri))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Disconnect(t.Context())
		coll := client.Database("smoke").Collection("c")
		if _, err := coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatalf("insert into %s: %v", uri, err)
		}
		n, err := coll.CountDocuments(t.Context(), bson.D{})
		if err != nil || n != 1 {
			t.Fatalf("%s: %d documents, %v; want 1", uri, n, err)
		}
	}
}
