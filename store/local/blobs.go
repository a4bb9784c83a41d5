package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/imgpipe/imgpipe/store"
)

// blobPath names the file of a key: the SHA-256 of the key, under two
// levels of 256 directories, so that millions of blobs never crowd one
// directory and any key (slashes, dots, length) maps to a safe name.
func (s *Store) blobPath(key string) (dir, file string) {
	sum := sha256.Sum256([]byte(key))
	name := hex.EncodeToString(sum[:])
	dir = filepath.Join(s.blobDir, name[0:2], name[2:4])
	return dir, filepath.Join(dir, name)
}

// PutBlob writes data to a temporary file, syncs it and renames it over the
// blob's name, then syncs the directory: after a crash the name holds the
// old bytes or the new ones, never a part.
func (s *Store) PutBlob(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return errors.New("store/local: empty blob key")
	}
	dir, path := s.blobPath(key)
	if err := s.mkdirSynced(dir); err != nil {
		return fmt.Errorf("store/local: put blob: %w", err)
	}
	tmp, err := writeTemp(s.tmpDir, data)
	if err != nil {
		return fmt.Errorf("store/local: put blob: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store/local: put blob: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("store/local: put blob: %w", err)
	}
	return nil
}

// GetBlob reads the blob under key.
func (s *Store) GetBlob(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, path := s.blobPath(key)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store/local: get blob: %w", err)
	}
	return data, nil
}

// HasBlob reports whether key has a blob.
func (s *Store) HasBlob(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	_, path := s.blobPath(key)
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store/local: has blob: %w", err)
	}
	return true, nil
}

// mkdirSynced creates the two shard levels under blobDir as needed, syncing
// each parent that gained an entry so the new directory survives a crash.
func (s *Store) mkdirSynced(dir string) error {
	parent := filepath.Dir(dir)
	for _, d := range []struct{ path, parent string }{{parent, s.blobDir}, {dir, parent}} {
		err := os.Mkdir(d.path, 0o750)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := syncDir(d.parent); err != nil {
			return err
		}
	}
	return nil
}

// writeTemp writes data to a new file in dir and syncs it.
func writeTemp(dir string, data []byte) (path string, err error) {
	f, err := os.CreateTemp(dir, "blob-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	if err = f.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// syncDir makes a directory's entries (a rename, a new file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
