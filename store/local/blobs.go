package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/imgpipe/imgpipe/store"
)

// A blob lives in one of two places by size: small ones in the database
// (blobs_small.go), large ones as files (blobs_files.go). The database is
// the authority: a blob it holds shadows any file of the same key, so that
// every step of moving a key from one place to the other leaves a crash
// with the old bytes or the new ones:
//
//   - small over large: commit the new bytes (now visible), then remove
//     the file (garbage from then on, even if a crash undoes the removal);
//   - large over small: make the file durable (still shadowed), then
//     delete the database copy (now the file is visible).

// PutBlob stores data under key and returns once it is durable.
func (s *Store) PutBlob(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return errors.New("store/local: empty blob key")
	}
	// Two writers of one key moving it in opposite directions could
	// otherwise each remove the other's copy.
	unlock := s.blobLocks.lock(key)
	defer unlock()
	var err error
	if len(data) <= smallBlobMax {
		if err = s.putSmall(key, data); err == nil {
			err = s.removeFile(key)
		}
	} else {
		if err = s.putFile(key, data); err == nil {
			err = s.deleteSmall(key)
		}
	}
	if err != nil {
		return fmt.Errorf("store/local: put blob: %w", err)
	}
	return nil
}

// GetBlob reads the blob under key.
func (s *Store) GetBlob(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, found, err := s.getBlob(key)
	if err == nil && !found {
		// Not in either place, or moved from one to the other between our
		// two looks by a PutBlob: the answer is certain only while no
		// PutBlob of the key is half done. A miss is rare; the lock is
		// only taken then.
		unlock := s.blobLocks.lock(key)
		data, found, err = s.getBlob(key)
		unlock()
	}
	if err != nil {
		return nil, fmt.Errorf("store/local: get blob: %w", err)
	}
	if !found {
		return nil, store.ErrNotFound
	}
	return data, nil
}

// getBlob looks in the database, then in the file.
func (s *Store) getBlob(key string) (data []byte, found bool, err error) {
	if data, found, err = s.getSmall(key); err != nil || found {
		return data, found, err
	}
	data, err = s.readFile(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return data, err == nil, err
}

// HasBlob reports whether key has a blob, looking where GetBlob would.
func (s *Store) HasBlob(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	found, err := s.hasBlob(key)
	if err == nil && !found {
		unlock := s.blobLocks.lock(key) // as in GetBlob
		found, err = s.hasBlob(key)
		unlock()
	}
	if err != nil {
		return false, fmt.Errorf("store/local: has blob: %w", err)
	}
	return found, nil
}

func (s *Store) hasBlob(key string) (bool, error) {
	if found, err := s.hasSmall(key); err != nil || found {
		return found, err
	}
	return s.hasFile(key)
}
