package mongo

import (
	"context"
	"errors"

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

// upload writes data as key's file; on failure it leaves nothing behind.
func (s *Store) upload(ctx context.Context, key string, data []byte, digest string) error {
	up, err := s.openUpload(ctx, key, options.GridFSUpload().SetMetadata(bson.D{{Key: "sha256", Value: digest}}))
	if err != nil {
		return err
	}
	if _, err = up.Write(data); err == nil {
		err = up.Close() // writes the last chunks, then the files document
	}
	if err != nil {
		// Abort removes the chunks written so far. It can fail too (a
		// canceled ctx is the stream's ctx), and Close may have failed
		// after the files document landed: clear both with a fresh context.
		_ = up.Abort()
		s.discard(ctx, key)
	}
	return err
}

// openUpload opens an upload stream, serializing until the driver has done
// its unsynchronized first-upload bookkeeping once (see Store.firstUpload).
func (s *Store) openUpload(ctx context.Context, key string, opts *options.GridFSUploadOptionsBuilder) (*mongo.GridFSUploadStream, error) {
	if !s.uploadReady.Load() {
		s.firstUpload.Lock()
		defer s.firstUpload.Unlock()
		up, err := s.bucket.OpenUploadStreamWithID(ctx, key, key, opts)
		if err == nil {
			s.uploadReady.Store(true)
		}
		return up, err
	}
	return s.bucket.OpenUploadStreamWithID(ctx, key, key, opts)
}

// discard removes whatever a failed upload left of key.
func (s *Store) discard(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseLimit)
	defer cancel()
	if err := s.clear(ctx, key); err != nil {
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
