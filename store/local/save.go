package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/imgpipe/imgpipe/model"
)

// SaveImage writes the blobs and the record in one commit: save2db's three
// or more writes per image (original, results, record), each waiting for
// a commit of its own one after the other, become one wait. Blobs over
// smallBlobMax go to files first, made durable before the commit that
// unshadows them, as in PutBlob: after a crash each blob is whole, old or
// new, and the record never names a blob the store lacks.
func (s *Store) SaveImage(ctx context.Context, img *model.Image, blobs map[string][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if img == nil || img.ID == "" {
		return errors.New("store/local: image without id")
	}
	keys := slices.Sorted(maps.Keys(blobs))
	if slices.Contains(keys, "") {
		return errors.New("store/local: empty blob key")
	}
	val, err := json.Marshal(img)
	if err != nil {
		return fmt.Errorf("store/local: save image: %w", err)
	}
	// In key order, so that two saves sharing keys cannot deadlock.
	for _, k := range keys {
		defer s.blobLocks.lock(k)()
	}
	for _, k := range keys {
		if len(blobs[k]) > smallBlobMax {
			if err := s.putFile(k, blobs[k]); err != nil {
				return fmt.Errorf("store/local: save image: %w", err)
			}
		}
	}
	err = s.commits.write(func(tx *bolt.Tx) error {
		for _, k := range keys {
			var err error
			if len(blobs[k]) > smallBlobMax {
				err = deleteSmallTx(tx, k) // unshadows the file just written
			} else {
				err = putSmallTx(tx, k, blobs[k])
			}
			if err != nil {
				return err
			}
		}
		return putImageTx(tx, img, val)
	})
	if err != nil {
		return fmt.Errorf("store/local: save image: %w", err)
	}
	for _, k := range keys {
		if len(blobs[k]) <= smallBlobMax {
			if err := s.removeFile(k); err != nil {
				return fmt.Errorf("store/local: save image: %w", err)
			}
		}
	}
	return nil
}
