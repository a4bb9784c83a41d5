package local

import (
	"crypto/sha256"
	"errors"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// smallBlobMax is the largest blob kept in the database rather than in a
// file. A blob in the database rides in the commit the committer shares
// with every writer of the moment (records, events, other blobs): one pair
// of fdatasyncs for the lot, where a file costs a file fsync, a directory
// fsync, often a mkdir and its parent's fsync, and creates contending on
// the tmp directory. In BenchmarkPipelineLoad/small (50 KiB + 5 KiB per
// image) the store's CPU per image went from about 2.8 ms to 0.7 (3.8 to
// 1.6 at 200 images a second). Larger blobs would be cheaper there too,
// but the database file never shrinks and bbolt walks all of it at open
// (about 0.35 s per GiB, see Open): camera originals stay files.
const smallBlobMax = 256 << 10

// Each small blob is a bucket of its own (under bucketBlobs) holding one
// value under blobDataKey. With the blobs as plain values of one bucket,
// bbolt keeps at least two values per leaf, so storing a blob rewrote its
// neighbours too (random keys: about 5 times the blob's bytes written per
// commit); a bucket of its own gives each blob its own pages, and a new
// blob only adds a small entry to a leaf of bucket headers.
var blobDataKey = []byte{0}

// blobID is the database key of a blob: the SHA-256 of its key, as for
// files, so that a key of any length fits.
func blobID(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// putSmall stores data in the database; it is durable when this returns.
func (s *Store) putSmall(key string, data []byte) error {
	return s.commits.write(func(tx *bolt.Tx) error { return putSmallTx(tx, key, data) })
}

// putSmallTx is putSmall's write, inside tx.
func putSmallTx(tx *bolt.Tx, key string, data []byte) error {
	if data == nil {
		data = []byte{} // an empty blob is a present, empty value
	}
	b, err := tx.Bucket(bucketBlobs).CreateBucketIfNotExists(blobID(key))
	if err != nil {
		return err
	}
	return b.Put(blobDataKey, data)
}

// getSmall returns a copy of the database's blob under key, and whether
// there is one.
func (s *Store) getSmall(key string) (data []byte, found bool, err error) {
	id := blobID(key)
	err = s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketBlobs).Bucket(id); b != nil {
			// The value is only valid inside the transaction.
			data, found = append([]byte{}, b.Get(blobDataKey)...), true
		}
		return nil
	})
	return data, found, err
}

// hasSmall reports whether the database has a blob under key.
func (s *Store) hasSmall(key string) (found bool, err error) {
	id := blobID(key)
	err = s.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(bucketBlobs).Bucket(id) != nil
		return nil
	})
	return found, err
}

// deleteSmall removes the database's blob under key, if any, durably. The
// common case, no such blob, costs a read and no commit.
func (s *Store) deleteSmall(key string) error {
	if found, err := s.hasSmall(key); err != nil || !found {
		return err
	}
	return s.commits.write(func(tx *bolt.Tx) error { return deleteSmallTx(tx, key) })
}

// deleteSmallTx is deleteSmall's write, inside tx.
func deleteSmallTx(tx *bolt.Tx, key string) error {
	err := tx.Bucket(bucketBlobs).DeleteBucket(blobID(key))
	if errors.Is(err, bolterrors.ErrBucketNotFound) {
		return nil // gone already: nothing to do
	}
	return err
}
