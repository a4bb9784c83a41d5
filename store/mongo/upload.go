package mongo

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// uploadAttempts bounds retries of an upload that met stray chunks.
const uploadAttempts = 3

// clear removes key's file: the files document first, so that no reader
// sees a file whose chunks are disappearing, then the chunks, including any
// a crashed writer left behind.
func (s *Store) clear(ctx context.Context, key string) error {
	if _, err := s.files.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}}); err != nil {
		return err
	}
	_, err := s.chunks.DeleteMany(ctx, bson.D{{Key: "files_id", Value: key}})
	return err
}

// chunkSize is GridFS's default chunk size, 255 KiB, as the driver's own
// uploads use.
const chunkSize = 255 << 10

// chunksPerInsert bounds one insert to about 4 MiB of chunks.
const chunksPerInsert = 16

// upload writes data as key's GridFS file: the chunks, then the files
// document, which is what makes the file visible (HasBlob, downloads). Both
// carry owner, the writer's lease token (an extra field GridFS readers
// ignore). On failure it removes what it wrote, and only that: a writer
// whose lease ran out must not remove its successor's file.
//
// It writes the two kinds of documents itself instead of through the
// driver's upload stream, which allocates a 16 MiB buffer per upload
// whatever the file's size: at a hundred small images a second, 1.6 GB a
// second of memory to clear and collect.
func (s *Store) upload(ctx context.Context, key string, data []byte, digest, owner string) error {
	var err error
	n := 0
	for off := 0; off < len(data) && err == nil; off += chunksPerInsert * chunkSize {
		// A few MiB per insert: the driver encodes a whole insert before
		// sending it, and a 50 MB original in one would be a second copy
		// of it in memory.
		batch := make([]any, 0, chunksPerInsert)
		for c := off; c < min(len(data), off+chunksPerInsert*chunkSize); c += chunkSize {
			batch = append(batch, bson.D{
				{Key: "_id", Value: bson.NewObjectID()},
				{Key: "files_id", Value: key},
				{Key: "n", Value: int32(n)},
				{Key: "data", Value: bson.Binary{Data: data[c:min(len(data), c+chunkSize)]}},
				{Key: "owner", Value: owner},
			})
			n++
		}
		_, err = s.chunks.InsertMany(ctx, batch)
	}
	if err == nil {
		_, err = s.files.InsertOne(ctx, bson.D{
			{Key: "_id", Value: key},
			{Key: "length", Value: int64(len(data))},
			{Key: "chunkSize", Value: int32(chunkSize)},
			{Key: "uploadDate", Value: time.Now()},
			{Key: "filename", Value: key},
			{Key: "metadata", Value: bson.D{{Key: "sha256", Value: digest}, {Key: "owner", Value: owner}}},
		})
	}
	if err != nil {
		// The insert may have landed in part, or whole after a timeout.
		s.discard(ctx, key, owner)
	}
	return err
}

// discard removes what owner's failed upload left of key: the files
// document first, as clear does, then the chunks.
func (s *Store) discard(ctx context.Context, key, owner string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseLimit)
	defer cancel()
	_, err := s.files.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "metadata.owner", Value: owner}})
	if err == nil {
		_, err = s.chunks.DeleteMany(ctx, bson.D{{Key: "files_id", Value: key}, {Key: "owner", Value: owner}})
	}
	if err != nil {
		s.log.Warn("could not clean up a failed blob upload; the next write of the key will", "key", key, "err", err)
	}
}

// fileDoc is the part of a GridFS files document PutBlob looks at.
type fileDoc struct {
	Length    int64 `bson:"length"`
	ChunkSize int32 `bson:"chunkSize"`
	Metadata  struct {
		SHA256 string `bson:"sha256"`
	} `bson:"metadata"`
}

// storedDigest returns the SHA-256 recorded for key's file, "" if there is
// no file, and "?" for a file that must be replaced anyway: another length,
// no digest, or chunks missing. The last happens when a timed-out upload's
// files document reached the server after its cleanup: trusting the digest
// alone would keep that broken file for good.
func (s *Store) storedDigest(ctx context.Context, key string, length int64) (string, error) {
	var doc fileDoc
	err := s.files.FindOne(ctx, bson.D{{Key: "_id", Value: key}},
		options.FindOne().SetProjection(bson.D{{Key: "length", Value: 1}, {Key: "chunkSize", Value: 1}, {Key: "metadata.sha256", Value: 1}})).Decode(&doc)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return "", nil
	case err != nil:
		return "", err
	case doc.Length != length || doc.Metadata.SHA256 == "" || (length > 0 && doc.ChunkSize <= 0):
		return "?", nil
	}
	want := int64(0)
	if length > 0 {
		want = (length + int64(doc.ChunkSize) - 1) / int64(doc.ChunkSize)
	}
	n, err := s.chunks.CountDocuments(ctx, bson.D{{Key: "files_id", Value: key}})
	if err != nil {
		return "", err
	}
	if n != want {
		return "?", nil
	}
	return doc.Metadata.SHA256, nil
}
