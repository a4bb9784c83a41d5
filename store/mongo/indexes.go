package mongo

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// createIndexes creates, if missing, every index the queries rely on.
// Creating an existing index with the same keys and options is a no-op, so
// every process does this at open.
func (s *Store) createIndexes(ctx context.Context) error {
	for _, ix := range []struct {
		coll   *mongo.Collection
		models []mongo.IndexModel
	}{
		// ListImages: all images, or one status, newest first, ties by id.
		{s.images, []mongo.IndexModel{
			{Keys: bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}},
			{Keys: bson.D{{Key: "status", Value: 1}, {Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}},
		}},
		// ImageEvents (oldest first) and RecentEvents (newest first). _id
		// ends both so the sort's tie-break is covered by the index too.
		{s.events, []mongo.IndexModel{
			{Keys: bson.D{{Key: "image_id", Value: 1}, {Key: "time", Value: 1}, {Key: "_id", Value: 1}}},
			{Keys: bson.D{{Key: "time", Value: -1}, {Key: "_id", Value: -1}}},
		}},
		// GridFS's own indexes. The driver creates them only before its
		// first write into an empty bucket, so a bucket created by another
		// tool could lack them; the unique chunk index is also what stops
		// two writers from interleaving chunks of one file.
		{s.files, []mongo.IndexModel{
			{Keys: bson.D{{Key: "filename", Value: 1}, {Key: "uploadDate", Value: 1}}},
		}},
		{s.chunks, []mongo.IndexModel{
			{Keys: bson.D{{Key: "files_id", Value: 1}, {Key: "n", Value: 1}}, Options: options.Index().SetUnique(true)},
		}},
	} {
		// One index per command: FerretDB 1.24 panics on a createIndexes
		// naming several indexes of which more than one already exists
		// (it deletes from its list by a stale position). MongoDB accepts
		// either form.
		for _, model := range ix.models {
			if _, err := ix.coll.Indexes().CreateOne(ctx, model); err != nil {
				return fmt.Errorf("store/mongo: create index on %s: %w", ix.coll.Name(), err)
			}
		}
	}
	return nil
}
