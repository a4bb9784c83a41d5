package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
)

// indexed is the part of an image record its index keys derive from.
type indexed struct {
	Status    model.Status `json:"status"`
	Retries   int          `json:"retries"`
	CreatedAt time.Time    `json:"created_at"`
}

// PutImage stores the record and moves its index entries if its status or
// creation time changed, all in one transaction.
func (s *Store) PutImage(ctx context.Context, img *model.Image) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if img == nil || img.ID == "" {
		return errors.New("store/local: image without id")
	}
	val, err := json.Marshal(img)
	if err != nil {
		return fmt.Errorf("store/local: put image: %w", err)
	}
	// The committer may run this function more than once: it only reads and
	// writes inside tx.
	err = s.commits.write(func(tx *bolt.Tx) error { return putImageTx(tx, img, val) })
	if err != nil {
		return fmt.Errorf("store/local: put image: %w", err)
	}
	return nil
}

// putImageTx writes img, whose JSON is val, inside tx, unless the stored
// record may not be replaced by it.
func putImageTx(tx *bolt.Tx, img *model.Image, val []byte) error {
	id := []byte(img.ID)
	images := tx.Bucket(bucketImages)
	if old := images.Get(id); old != nil {
		var prev indexed
		if err := json.Unmarshal(old, &prev); err != nil {
			return fmt.Errorf("stored image %s: %w", img.ID, err)
		}
		if !model.Supersedes(img, &model.Image{Status: prev.Status, Retries: prev.Retries}) {
			return nil // never backwards
		}
		if err := unindexImage(tx, prev.Status, timeIDKey(prev.CreatedAt, img.ID)); err != nil {
			return err
		}
	}
	if err := images.Put(id, val); err != nil {
		return err
	}
	return indexImage(tx, img.Status, timeIDKey(img.CreatedAt, img.ID))
}

// indexImage adds the record's index entries. A record without a status
// (the store does not judge records) is only in the time index: an empty
// status filter means "all" anyway, and bbolt has no unnamed buckets.
func indexImage(tx *bolt.Tx, status model.Status, key []byte) error {
	if err := tx.Bucket(bucketImagesByTime).Put(key, nil); err != nil {
		return err
	}
	if status == "" {
		return nil
	}
	b, err := tx.Bucket(bucketImagesByStat).CreateBucketIfNotExists([]byte(status))
	if err != nil {
		return err
	}
	return b.Put(key, nil)
}

func unindexImage(tx *bolt.Tx, status model.Status, key []byte) error {
	if err := tx.Bucket(bucketImagesByTime).Delete(key); err != nil {
		return err
	}
	if status == "" {
		return nil
	}
	if b := tx.Bucket(bucketImagesByStat).Bucket([]byte(status)); b != nil {
		return b.Delete(key)
	}
	return nil
}

// GetImage returns the record with id.
func (s *Store) GetImage(ctx context.Context, id string) (*model.Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var img *model.Image
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketImages).Get([]byte(id))
		if v == nil {
			return store.ErrNotFound
		}
		img = new(model.Image)
		return json.Unmarshal(v, img)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("store/local: get image: %w", err)
	}
	return img, nil
}

// ListImages walks the time index (or the status's own index) backwards
// from the cursor, reading one record more than asked to learn whether
// another page follows.
func (s *Store) ListImages(ctx context.Context, q store.ListQuery) (store.Page, error) {
	if err := ctx.Err(); err != nil {
		return store.Page{}, err
	}
	q = q.Normalize()
	var after []byte
	if q.Cursor != "" {
		var err error
		if after, err = decodeCursor(q.Cursor); err != nil {
			return store.Page{}, err
		}
	}
	page := store.Page{Images: make([]model.Image, 0, min(q.Limit, 64))}
	err := s.db.View(func(tx *bolt.Tx) error {
		index := tx.Bucket(bucketImagesByTime)
		if q.Status != "" {
			index = tx.Bucket(bucketImagesByStat).Bucket([]byte(q.Status))
			if index == nil {
				return nil // no image ever had this status
			}
		}
		images := tx.Bucket(bucketImages)
		c := index.Cursor()
		k := startBefore(c, after)
		var last []byte
		for ; k != nil; k, _ = c.Prev() {
			if len(page.Images) == q.Limit {
				page.Next = encodeCursor(last)
				return nil
			}
			id := k[timeKeyLen:]
			v := images.Get(id)
			if v == nil {
				return fmt.Errorf("index entry for missing image %q", id)
			}
			var img model.Image
			if err := json.Unmarshal(v, &img); err != nil {
				return fmt.Errorf("stored image %q: %w", id, err)
			}
			page.Images = append(page.Images, img)
			last = append(last[:0], k...) // k is only valid inside tx
		}
		return nil
	})
	if err != nil {
		return store.Page{}, fmt.Errorf("store/local: list images: %w", err)
	}
	return page, nil
}

// startBefore positions c on the last key strictly before after, or on the
// last key when after is nil.
func startBefore(c *bolt.Cursor, after []byte) []byte {
	if after == nil {
		k, _ := c.Last()
		return k
	}
	k, _ := c.Seek(after)
	if k == nil { // every key is before after
		k, _ = c.Last()
		return k
	}
	k, _ = c.Prev() // Seek lands on the first key >= after
	return k
}
