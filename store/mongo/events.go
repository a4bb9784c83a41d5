package mongo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
)

// codeDuplicateKey is MongoDB's (and FerretDB's) duplicate key error.
const codeDuplicateKey = 11000

// AppendEvents inserts the events in one unordered batch: the event id is
// the document _id, so a stored event fails alone with a duplicate key and
// the others still go in.
func (s *Store) AppendEvents(ctx context.Context, events ...model.Event) error {
	if len(events) == 0 {
		return nil
	}
	for _, ev := range events {
		if ev.ID == "" {
			return errors.New("store/mongo: event without id")
		}
	}
	_, err := s.events.InsertMany(ctx, events, options.InsertMany().SetOrdered(false))
	if err != nil && !onlyDuplicates(err) {
		return fmt.Errorf("store/mongo: append events: %w", err)
	}
	return nil
}

// onlyDuplicates reports whether every write error of a bulk insert is a
// duplicate key (and the write concern was met).
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != codeDuplicateKey {
			return false
		}
	}
	return true
}

// ImageEvents returns one image's events, oldest first.
func (s *Store) ImageEvents(ctx context.Context, imageID string) ([]model.Event, error) {
	return s.findEvents(ctx, bson.D{{Key: "image_id", Value: imageID}},
		options.Find().SetSort(bson.D{{Key: "time", Value: 1}, {Key: "_id", Value: 1}}))
}

// RecentEvents returns the newest events, newest first. limit <= 0 means
// store.DefaultListLimit; it is capped at store.MaxListLimit.
func (s *Store) RecentEvents(ctx context.Context, limit int) ([]model.Event, error) {
	limit = store.ListQuery{Limit: limit}.Normalize().Limit
	return s.findEvents(ctx, bson.D{},
		options.Find().SetSort(bson.D{{Key: "time", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(limit)))
}

func (s *Store) findEvents(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder) ([]model.Event, error) {
	cur, err := s.events.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("store/mongo: find events: %w", err)
	}
	events := []model.Event{}
	if err := cur.All(ctx, &events); err != nil {
		return nil, fmt.Errorf("store/mongo: find events: %w", err)
	}
	return events, nil
}
