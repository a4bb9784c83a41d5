package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
)

// AppendEvents stores the events not stored yet, in one transaction shared
// (through the committer) with other writers of the moment.
func (s *Store) AppendEvents(ctx context.Context, events ...model.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	vals := make([][]byte, len(events))
	for i := range events {
		if events[i].ID == "" {
			return errors.New("store/local: event without id")
		}
		v, err := json.Marshal(&events[i])
		if err != nil {
			return fmt.Errorf("store/local: append events: %w", err)
		}
		vals[i] = v
	}
	err := s.commits.write(func(tx *bolt.Tx) error {
		byID := tx.Bucket(bucketEvents)
		byImage := tx.Bucket(bucketEventsByImg)
		byTime := tx.Bucket(bucketEventsByTime)
		for i, ev := range events {
			id := []byte(ev.ID)
			if byID.Get(id) != nil {
				continue // stored before, or earlier in this same call
			}
			if err := byID.Put(id, vals[i]); err != nil {
				return err
			}
			tk := timeIDKey(ev.Time, ev.ID)
			if err := byImage.Put(append(imagePrefix(ev.ImageID), tk...), nil); err != nil {
				return err
			}
			if err := byTime.Put(tk, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store/local: append events: %w", err)
	}
	return nil
}

// ImageEvents returns one image's events, oldest first.
func (s *Store) ImageEvents(ctx context.Context, imageID string) ([]model.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prefix := imagePrefix(imageID)
	events := []model.Event{}
	err := s.db.View(func(tx *bolt.Tx) error {
		byID := tx.Bucket(bucketEvents)
		c := tx.Bucket(bucketEventsByImg).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			ev, err := getEvent(byID, k[len(prefix)+timeKeyLen:])
			if err != nil {
				return err
			}
			events = append(events, ev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store/local: image events: %w", err)
	}
	return events, nil
}

// RecentEvents returns the newest events, newest first. limit <= 0 means
// store.DefaultListLimit; it is capped at store.MaxListLimit.
func (s *Store) RecentEvents(ctx context.Context, limit int) ([]model.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit = store.ListQuery{Limit: limit}.Normalize().Limit
	events := make([]model.Event, 0, min(limit, 64))
	err := s.db.View(func(tx *bolt.Tx) error {
		byID := tx.Bucket(bucketEvents)
		c := tx.Bucket(bucketEventsByTime).Cursor()
		for k, _ := c.Last(); k != nil && len(events) < limit; k, _ = c.Prev() {
			ev, err := getEvent(byID, k[timeKeyLen:])
			if err != nil {
				return err
			}
			events = append(events, ev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store/local: recent events: %w", err)
	}
	return events, nil
}

func getEvent(byID *bolt.Bucket, id []byte) (model.Event, error) {
	var ev model.Event
	v := byID.Get(id)
	if v == nil {
		return ev, fmt.Errorf("index entry for missing event %q", id)
	}
	if err := json.Unmarshal(v, &ev); err != nil {
		return ev, fmt.Errorf("stored event %q: %w", id, err)
	}
	return ev, nil
}
