package mongo

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
)

// PutImage upserts the record by id. The indexes follow status and time
// changes by themselves.
//
// A record may only replace those model.Supersedes allows: the filter then
// also excludes the statuses it may not replace, so against one of those
// the upsert tries to insert, hits the _id index, and the duplicate key
// error means "a newer record is there", which is success.
func (s *Store) PutImage(ctx context.Context, img *model.Image) error {
	if img == nil || img.ID == "" {
		return errors.New("store/mongo: image without id")
	}
	filter := bson.D{{Key: "_id", Value: img.ID}}
	var keep bson.A // the statuses img may not replace
	for _, st := range []model.Status{model.StatusQueued, model.StatusProcessing, model.StatusDone, model.StatusFailed} {
		if !model.Replaces(img.Status, st) {
			keep = append(keep, st)
		}
	}
	if keep != nil {
		// Mirrors model.Supersedes. A record without retries has none
		// stored (omitempty).
		noRetries := bson.D{{Key: "retries", Value: bson.D{{Key: "$exists", Value: false}}}}
		sameRun := bson.D{{Key: "retries", Value: img.Retries}}
		if img.Retries == 0 {
			sameRun = noRetries
		}
		// Within the run, the statuses img may replace.
		clauses := bson.A{append(bson.D{{Key: "status", Value: bson.D{{Key: "$nin", Value: keep}}}}, sameRun...)}
		if img.Retries > 0 {
			// A record of an earlier run: anything but a success.
			earlier := bson.A{noRetries, bson.D{{Key: "retries", Value: bson.D{{Key: "$lt", Value: img.Retries}}}}}
			clauses = append(clauses, bson.D{{Key: "status", Value: bson.D{{Key: "$ne", Value: model.StatusDone}}}, {Key: "$or", Value: earlier}})
		}
		filter = append(filter, bson.E{Key: "$or", Value: clauses})
	}
	opts := options.Replace().SetUpsert(true)
	_, err := s.images.ReplaceOne(ctx, filter, img, opts)
	if mongo.IsDuplicateKeyError(err) {
		// Either a record img may not replace is there, or two upserts
		// of a new id raced to insert it (the server does not retry an
		// upsert whose filter is not equality only). Once more tells
		// them apart: the loser of a race now finds the document.
		_, err = s.images.ReplaceOne(ctx, filter, img, opts)
		if mongo.IsDuplicateKeyError(err) && keep != nil {
			return nil // a record it may not replace is there: never backwards
		}
	}
	if err != nil {
		return fmt.Errorf("store/mongo: put image: %w", err)
	}
	return nil
}

// GetImage returns the record with id.
func (s *Store) GetImage(ctx context.Context, id string) (*model.Image, error) {
	img := new(model.Image)
	err := s.images.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(img)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store/mongo: get image: %w", err)
	}
	return img, nil
}

// ListImages reads one record more than asked to learn whether another page
// follows. The cursor is the (created_at, _id) of the last record returned,
// and the next page starts strictly after it in the sort order: unlike
// skip/limit, records arriving meanwhile shift nothing.
func (s *Store) ListImages(ctx context.Context, q store.ListQuery) (store.Page, error) {
	q = q.Normalize()
	filter := bson.D{}
	if q.Status != "" {
		filter = append(filter, bson.E{Key: "status", Value: q.Status})
	}
	if q.Cursor != "" {
		created, id, err := decodeCursor(q.Cursor)
		if err != nil {
			return store.Page{}, err
		}
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "created_at", Value: bson.D{{Key: "$lt", Value: created}}}},
			bson.D{{Key: "created_at", Value: created}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: id}}}},
		}})
	}
	opts := options.Find().
		SetSort(bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(q.Limit) + 1)
	cur, err := s.images.Find(ctx, filter, opts)
	if err != nil {
		return store.Page{}, fmt.Errorf("store/mongo: list images: %w", err)
	}
	page := store.Page{Images: []model.Image{}}
	if err := cur.All(ctx, &page.Images); err != nil {
		return store.Page{}, fmt.Errorf("store/mongo: list images: %w", err)
	}
	if len(page.Images) > q.Limit {
		page.Images = page.Images[:q.Limit]
		last := page.Images[q.Limit-1]
		page.Next = encodeCursor(last.CreatedAt, last.ID)
	}
	return page, nil
}

// cursorTag marks MongoDB cursors, so that a cursor made by another store
// (or a hand-made one) is refused rather than misread.
const cursorTag = 'M'

// encodeCursor packs the tag, created_at in Unix milliseconds (BSON dates
// hold no finer) and the id.
func encodeCursor(created time.Time, id string) string {
	b := make([]byte, 0, 9+len(id))
	b = append(b, cursorTag)
	b = binary.BigEndian.AppendUint64(b, uint64(created.UnixMilli()))
	b = append(b, id...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(cursor string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 10 || b[0] != cursorTag {
		return time.Time{}, "", store.ErrBadCursor
	}
	ms := int64(binary.BigEndian.Uint64(b[1:9]))
	return time.UnixMilli(ms).UTC(), string(b[9:]), nil
}

// SaveImage writes the blobs, then the record. MongoDB could join them in
// a transaction only on a replica set, and GridFS files are written under
// leases anyway: the order alone keeps a record from naming a missing blob.
func (s *Store) SaveImage(ctx context.Context, img *model.Image, blobs map[string][]byte) error {
	for _, k := range slices.Sorted(maps.Keys(blobs)) {
		if err := s.PutBlob(ctx, k, blobs[k]); err != nil {
			return err
		}
	}
	return s.PutImage(ctx, img)
}
