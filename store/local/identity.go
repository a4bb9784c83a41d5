package local

import (
	"context"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/imgpipe/imgpipe/store"
)

var (
	bucketMeta  = []byte("meta")     // facts about the store itself
	identityKey = []byte("identity") // in bucketMeta: store.Store.Identity
)

// identity reads the store's identity, making it on the store's first
// open. Run in the transaction that creates the buckets.
func identity(tx *bolt.Tx) (string, error) {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return "", err
	}
	if id := meta.Get(identityKey); id != nil {
		return string(id), nil
	}
	id := store.NewIdentity()
	return id, meta.Put(identityKey, []byte(id))
}

// Identity is made at the store's first open (see store.Store).
func (s *Store) Identity() string {
	s.identityMu.Lock()
	defer s.identityMu.Unlock()
	return s.identity
}

// Reidentify writes a new identity (see store.Store).
func (s *Store) Reidentify(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	id := store.NewIdentity()
	if err := s.commits.write(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(identityKey, []byte(id))
	}); err != nil {
		return "", fmt.Errorf("store/local: new identity: %w", err)
	}
	s.identityMu.Lock()
	defer s.identityMu.Unlock()
	s.identity = id
	return id, nil
}

// Where is the store's host and directory: two machines' stores may have
// the same path.
func (s *Store) Where() string {
	host, _ := os.Hostname()
	return host + ":" + s.dir
}
