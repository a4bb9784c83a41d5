// Package store persists originals, results, image records and activity for
// good. Store is the interface the roles use; implementations live in
// sub-packages (local, mongo) and are chosen by URL scheme in Open.
package store

import (
	"context"
	"errors"

	"github.com/imgpipe/imgpipe/model"
)

// ErrNotFound is returned when a blob, image or page does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrMisconfigured marks an open the store refuses for what it was asked
// (a database name MongoDB does not allow, a login it refuses, a user
// without the rights to create the indexes): trying again cannot help, so
// a starting process says so at once rather than retrying until its
// startup timeout.
var ErrMisconfigured = errors.New("refused for its configuration, not retried")

// Store is durable storage. Every write is idempotent: writing the same key
// or id twice leaves one copy, so redelivered messages are harmless.
type Store interface {
	// PutBlob stores data under key (see model.OriginalKey, model.ResultKey),
	// replacing what was there. It returns only when the data is durable.
	PutBlob(ctx context.Context, key string, data []byte) error
	// GetBlob returns the bytes under key, or ErrNotFound.
	GetBlob(ctx context.Context, key string) ([]byte, error)
	// HasBlob reports whether key exists without reading it.
	HasBlob(ctx context.Context, key string) (bool, error)

	// PutImage inserts or replaces the record with img.ID, except that a
	// final record is only replaced by a done one (model.Replaces): save2db
	// handles an upload's "accepted" and "final" messages in any order, on
	// any instance, and the record must not move backwards.
	PutImage(ctx context.Context, img *model.Image) error
	// SaveImage is PutBlob for each of blobs (key to bytes), then PutImage
	// of img, in one write where the store can: the record never names a
	// blob the store lacks. The blobs are written even when the record
	// may not replace the stored one.
	SaveImage(ctx context.Context, img *model.Image, blobs map[string][]byte) error
	// GetImage returns the record, or ErrNotFound.
	GetImage(ctx context.Context, id string) (*model.Image, error)
	// ListImages returns records newest first (CreatedAt, then ID, both
	// descending). Page.Next is empty on the last page.
	ListImages(ctx context.Context, q ListQuery) (Page, error)

	// AppendEvents stores events; an event whose ID is already stored is
	// skipped.
	AppendEvents(ctx context.Context, events ...model.Event) error
	// ImageEvents returns the events of one image, oldest first.
	ImageEvents(ctx context.Context, imageID string) ([]model.Event, error)
	// RecentEvents returns the newest events across all images, newest first.
	RecentEvents(ctx context.Context, limit int) ([]model.Event, error)

	// Identity is a random id the store made when it was first opened and
	// keeps with its data: the same for every process that opens it,
	// whatever URL reaches it, and different for any other store (another
	// database, a wiped directory). The bus records it (bus.StoreBinding),
	// so that a process given the wrong store is refused, rather than
	// taking images off the shared queues into a store no one reads.
	Identity() string
	// Where says where the store is, for people: its URL without
	// credentials, or its directory.
	Where() string
	// Reidentify gives the store a new identity, kept as the first was,
	// and returns it: a copy of a store (a restored dump carries its
	// identity) goes its own way, as the bus's new store (--rebind-store).
	Reidentify(ctx context.Context) (string, error)

	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}

// ListQuery selects a page of images.
type ListQuery struct {
	Status model.Status // empty: all
	Limit  int          // 1..1000; 0 means 50
	Cursor string       // opaque, from Page.Next
}

// Page is one page of a listing.
type Page struct {
	Images []model.Image
	Next   string
}

// Limits on listing sizes, shared by implementations.
const (
	DefaultListLimit = 50
	MaxListLimit     = 1000
)

// Normalize applies the default limit and clamps it.
func (q ListQuery) Normalize() ListQuery {
	if q.Limit <= 0 {
		q.Limit = DefaultListLimit
	}
	if q.Limit > MaxListLimit {
		q.Limit = MaxListLimit
	}
	return q
}

// ErrUnavailable marks a failure to reach the store, as opposed to a
// missing record; the API answers it with 503.
var ErrUnavailable = errors.New("store: unavailable")

// ErrBadCursor is returned for a cursor the store did not make.
var ErrBadCursor = errors.New("store: bad cursor")
