package mongo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/imgpipe/imgpipe/store"
)

// Polling while another writer holds a key's lease.
const (
	waitFirst = 20 * time.Millisecond
	waitMax   = time.Second
)

// PutBlob stores data as the GridFS file with id = key, its SHA-256 in the
// file's metadata. Under the key's lease (lease.go) it skips the upload if
// the same bytes are there already, otherwise clears the previous version
// and uploads. A writer finding the lease held waits for the holder and
// then looks again: a concurrent duplicate upload ends with one file and no
// error. While a different version replaces an old one, readers briefly
// see no file.
func (s *Store) PutBlob(ctx context.Context, key string, data []byte) error {
	if key == "" {
		return errors.New("store/mongo: empty blob key")
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	for wait := waitFirst; ; wait = min(2*wait, waitMax) {
		l, err := s.acquireLease(ctx, key, len(data))
		if err != nil {
			return fmt.Errorf("store/mongo: put blob: %w", err)
		}
		if l != nil {
			err := s.putLeased(ctx, l, data, digest)
			l.release(ctx)
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store/mongo: put blob: waiting for another writer of %q: %w", key, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// putLeased does PutBlob's work while holding the key's lease l.
func (s *Store) putLeased(ctx context.Context, l *lease, data []byte, digest string) error {
	key := l.key
	stored, err := s.storedDigest(ctx, key, int64(len(data)))
	if err != nil {
		return fmt.Errorf("store/mongo: put blob: %w", err)
	}
	if stored == digest {
		return nil // a redelivery, or the writer we waited for
	}
	for attempt := 1; ; attempt++ {
		// Clearing deletes whatever the key holds: only while the lease
		// is still ours (see lease.go).
		if err := l.renew(ctx, len(data)); err != nil {
			return fmt.Errorf("store/mongo: put blob: %w", err)
		}
		if err := s.clear(ctx, key); err != nil {
			return fmt.Errorf("store/mongo: put blob: remove old version: %w", err)
		}
		err := s.upload(ctx, key, data, digest, l.owner)
		if err == nil {
			return nil
		}
		// A duplicate key while we hold the lease comes from a dead
		// writer's insert still running on the server (a client timeout
		// does not stop it everywhere: FerretDB carries on). Let it end,
		// clear again and retry.
		if !mongo.IsDuplicateKeyError(err) || attempt == uploadAttempts {
			return fmt.Errorf("store/mongo: put blob: upload: %w", err)
		}
		s.log.Warn("blob chunks appeared under our lease; retrying the upload", "key", key, "attempt", attempt)
		select {
		case <-ctx.Done():
			return fmt.Errorf("store/mongo: put blob: %w", ctx.Err())
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
}

// GetBlob downloads key's file and checks it against its recorded SHA-256,
// which catches a corrupted or mixed-up file (for instance one read while a
// different version replaced it).
func (s *Store) GetBlob(ctx context.Context, key string) ([]byte, error) {
	down, err := s.bucket.OpenDownloadStream(ctx, key)
	if errors.Is(err, mongo.ErrFileNotFound) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store/mongo: get blob: %w", err)
	}
	defer down.Close()
	file := down.GetFile()
	if file.Length < 0 {
		return nil, fmt.Errorf("store/mongo: get blob %q: negative length %d", key, file.Length)
	}
	data := make([]byte, file.Length)
	if _, err := io.ReadFull(down, data); err != nil {
		return nil, fmt.Errorf("store/mongo: get blob %q: %w", key, err)
	}
	if want, ok := file.Metadata.Lookup("sha256").StringValueOK(); ok {
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != want {
			return nil, fmt.Errorf("store/mongo: get blob %q: content does not match its SHA-256 (%s, recorded %s)", key, got, want)
		}
	}
	return data, nil
}

// HasBlob reports whether key's file exists. The files document is written
// after all chunks, so an existing one means a complete file.
func (s *Store) HasBlob(ctx context.Context, key string) (bool, error) {
	err := s.files.FindOne(ctx, bson.D{{Key: "_id", Value: key}},
		options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store/mongo: has blob: %w", err)
	}
	return true, nil
}
