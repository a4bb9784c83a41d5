package local

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Large blobs (over smallBlobMax) are files: a file costs a data fsync and a
// directory fsync of its own, but keeps multi-megabyte values out of the
// database file, which never shrinks and is scanned at open. Writing the
// bytes dominates a large blob's cost (over 80% of the CPU of
// BenchmarkPipelineLoad/photo is in write(2); mkdir, directory fsyncs and
// the temp file's create under 10%), so the fsyncs of concurrent writers
// are not grouped, nor the directory layout changed.

// blobPath names the file of a key: the SHA-256 of the key, under two
// levels of 256 directories, so that millions of blobs never crowd one
// directory and any key (slashes, dots, length) maps to a safe name.
func (s *Store) blobPath(key string) (dir, file string) {
	sum := sha256.Sum256([]byte(key))
	name := hex.EncodeToString(sum[:])
	dir = filepath.Join(s.blobDir, name[0:2], name[2:4])
	return dir, filepath.Join(dir, name)
}

// putFile writes data to a temporary file, syncs it and renames it over the
// blob's name, then syncs the directory: after a crash the name holds the
// old bytes or the new ones, never a part.
func (s *Store) putFile(key string, data []byte) error {
	dir, path := s.blobPath(key)
	if err := s.mkdirSynced(dir); err != nil {
		return err
	}
	tmp, err := writeTemp(s.tmpDir, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// readFile returns the file of key, or fs.ErrNotExist.
func (s *Store) readFile(key string) ([]byte, error) {
	_, path := s.blobPath(key)
	return os.ReadFile(path)
}

// hasFile reports whether key has a file.
func (s *Store) hasFile(key string) (bool, error) {
	_, path := s.blobPath(key)
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// removeFile deletes the file of key if there is one. The removal is not
// synced: a file that comes back after a crash is shadowed by the database
// copy that replaced it (see PutBlob). Every small PutBlob calls it, almost
// always for nothing: one lstat is cheaper than os.Remove's failed unlink
// and rmdir.
func (s *Store) removeFile(key string) error {
	_, path := s.blobPath(key)
	_, err := os.Lstat(path)
	if err == nil {
		err = os.Remove(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
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
