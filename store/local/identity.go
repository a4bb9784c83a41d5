package local

import (
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
func (s *Store) Identity() string { return s.identity }

// Where is the store's host and directory: two machines' stores may have
// the same path.
func (s *Store) Where() string {
	host, _ := os.Hostname()
	return host + ":" + s.dir
}
