package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
	"github.com/nats-io/nats.go/jetstream"
)

// status is bus.StatusTable on a JetStream key-value bucket holding the
// JSON of model.Image by id, one revision per key, expiring StatusTTL
// after the last write.
type status struct{ b *Bus }

// Status returns the live status table.
func (b *Bus) Status() bus.StatusTable { return status{b} }

// idRe is the shape of image ids (hex or base32 digests); it also keeps
// ids valid as KV keys.
var idRe = regexp.MustCompile(`^[a-z0-9]{1,128}$`)

func checkID(id string) error {
	if !idRe.MatchString(id) {
		return fmt.Errorf("natsbus: invalid image id %q (want %s)", id, idRe)
	}
	return nil
}

// beginRecordWrite checks img, begins the write op of it (see
// Bus.beginWrite) and returns its JSON.
func (s status) beginRecordWrite(ctx context.Context, op string, img *model.Image) (context.Context, func(), []byte, error) {
	if img == nil {
		return ctx, nil, nil, fmt.Errorf("natsbus: %s: nil image", op)
	}
	if err := checkID(img.ID); err != nil {
		return ctx, nil, nil, err
	}
	ctx, done, err := s.b.beginWrite(ctx, op+" "+img.ID)
	if err != nil {
		return ctx, nil, nil, err
	}
	data, err := json.Marshal(img)
	if err != nil {
		done()
		return ctx, nil, nil, fmt.Errorf("natsbus: %s %s: %w", op, img.ID, err)
	}
	return ctx, done, data, nil
}

// Create relies on the bucket's create-if-absent (a write expecting no
// previous revision), so racing instances end with one record; the losers
// read the winner's.
func (s status) Create(ctx context.Context, img *model.Image) (*model.Image, bool, error) {
	ctx, done, data, err := s.beginRecordWrite(ctx, "status create", img)
	if err != nil {
		return nil, false, err
	}
	defer done()
	op := "status create " + img.ID
	// Loop for the rare case where the record expires between our failed
	// create and the read of the winner.
	for range 3 {
		seq, err := s.b.kv.Create(ctx, img.ID, data)
		if err == nil {
			s.b.revs.set(img.ID, seq, img)
			created, err := decode(data)
			return created, true, err
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, false, s.b.fail(ctx, op, err)
		}
		// The winner's record, from the leader: a lagging replica could
		// still say there is none.
		value, _, err := s.latest(ctx, img.ID)
		switch {
		case err == nil:
			cur, err := decode(value)
			return cur, false, err
		case !errors.Is(err, bus.ErrNotFound):
			return nil, false, s.b.fail(ctx, op, err)
		}
	}
	return nil, false, fmt.Errorf("natsbus: %s: %w: the record keeps vanishing", op, bus.ErrUnavailable)
}

// Reopen is a compare-and-set against the record read from the leader:
// a lagging replica could still show the failure another upload replaced.
func (s status) Reopen(ctx context.Context, img *model.Image) (*model.Image, bool, error) {
	ctx, done, data, err := s.beginRecordWrite(ctx, "status reopen", img)
	if err != nil {
		return nil, false, err
	}
	defer done()
	op := "status reopen " + img.ID
	for {
		var seq uint64
		value, rev, err := s.latest(ctx, img.ID)
		switch {
		case errors.Is(err, bus.ErrNotFound):
			seq, err = s.b.kv.Create(ctx, img.ID, data)
		case err != nil:
			return nil, false, s.b.fail(ctx, op, err)
		default:
			cur, derr := decode(value)
			if derr != nil {
				return nil, false, fmt.Errorf("natsbus: %s: %w", op, derr)
			}
			if cur.Status != model.StatusFailed || cur.Retries >= img.Retries {
				return cur, false, nil // reopened by another upload, or not to be
			}
			seq, err = s.b.kv.Update(ctx, img.ID, data, rev)
		}
		if err == nil {
			s.b.revs.set(img.ID, seq, img)
			return img, true, nil
		}
		if !isConflict(err) && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, false, s.b.fail(ctx, op, err)
		}
	}
}

func (s status) Get(ctx context.Context, id string) (*model.Image, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	op := "status get " + id
	ctx, done, err := s.b.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	defer done()
	e, err := s.b.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("natsbus: %s: %w", op, bus.ErrNotFound)
	}
	if err != nil {
		return nil, s.b.fail(ctx, op, err)
	}
	img, err := decode(e.Value())
	if err != nil {
		return nil, fmt.Errorf("natsbus: %s: %w", op, err)
	}
	s.b.revs.set(id, e.Revision(), img)
	return img, nil
}

func (s status) Put(ctx context.Context, img *model.Image) error {
	if img == nil {
		return errors.New("natsbus: status put: nil image")
	}
	if err := checkID(img.ID); err != nil {
		return err
	}
	op := "status put " + img.ID
	ctx, done, err := s.b.beginWrite(ctx, op)
	if err != nil {
		return err
	}
	defer done()
	// Compare-and-set on the entry's revision: a redelivered message can
	// have two workers on one image, and the slower must not undo the
	// faster's outcome (see bus.StatusTable.Put). The revision this
	// process last saw is tried first, without reading the record.
	if rev, ok := s.b.revs.get(img.ID); ok && rev.retries == img.Retries {
		// Another run's record is judged on a fresh read (model.Supersedes).
		img.Attempts = max(img.Attempts, rev.attempts)
		data, err := json.Marshal(img)
		if err != nil {
			return fmt.Errorf("natsbus: %s: %w", op, err)
		}
		seq, err := s.b.kv.Update(ctx, img.ID, data, rev.seq)
		if err == nil {
			s.b.revs.set(img.ID, seq, img)
			return nil
		}
		s.b.revs.forget(img.ID)
		if !isConflict(err) {
			return s.b.fail(ctx, op, err)
		}
	}
	// A direct get first, the cheap read; after a conflict, the leader's
	// read: the conflict may come from a replica that lags behind, which
	// would go on answering with the same stale revision.
	read := s.direct
	for {
		var seq uint64
		value, rev, err := read(ctx, img.ID)
		if err != nil && !errors.Is(err, bus.ErrNotFound) {
			return s.b.fail(ctx, op, err)
		}
		if err == nil {
			cur, derr := decode(value)
			if derr == nil && !model.Supersedes(img, cur) {
				return nil
			}
			if derr == nil && cur.Retries == img.Retries {
				img.Attempts = max(img.Attempts, cur.Attempts)
			}
		}
		data, merr := json.Marshal(img)
		if merr != nil {
			return fmt.Errorf("natsbus: %s: %w", op, merr)
		}
		if err != nil { // not found
			seq, err = s.b.kv.Create(ctx, img.ID, data)
		} else {
			seq, err = s.b.kv.Update(ctx, img.ID, data, rev)
		}
		if err == nil {
			s.b.revs.set(img.ID, seq, img)
			return nil
		}
		if !isConflict(err) {
			return s.b.fail(ctx, op, err)
		}
		read = s.latest
	}
}

// direct reads id's record and revision by direct get, which any replica
// may answer; bus.ErrNotFound if there is none.
func (s status) direct(ctx context.Context, id string) ([]byte, uint64, error) {
	e, err := s.b.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, bus.ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	return e.Value(), e.Revision(), nil
}

// latest reads id's record and revision through the bucket's leader, which
// has every acknowledged write; bus.ErrNotFound if there is none, or if its
// last write deleted it.
func (s status) latest(ctx context.Context, id string) ([]byte, uint64, error) {
	bucket := s.b.names.statusBucket()
	msg, err := s.b.leaderGet(ctx, "KV_"+bucket, "$KV."+bucket+"."+id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, bus.ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	switch msg.Header.Get(kvOperation) {
	case "DEL", "PURGE":
		return nil, 0, bus.ErrNotFound
	}
	switch msg.Header.Get(markerReason) {
	case "MaxAge", "Purge", "Remove":
		return nil, 0, bus.ErrNotFound
	}
	return msg.Data, msg.Sequence, nil
}

// Headers of key-value entries that are not values: a delete or purge, and
// the server's marker of a removal (buckets with limit markers).
const (
	kvOperation  = "KV-Operation"
	markerReason = "Nats-Marker-Reason"
)

// isConflict reports a lost compare-and-set race (someone wrote between
// our read and our write, or the revision we had was stale): read again
// and decide again. A single server reports it as error code 10071, a
// replicated bucket as 10164; the client maps both to
// ErrKeyRevisionMismatch, and a create's to ErrKeyExists.
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		(errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant))
}

func decode(data []byte) (*model.Image, error) {
	img := new(model.Image)
	if err := json.Unmarshal(data, img); err != nil {
		return nil, fmt.Errorf("decode status record: %w", err)
	}
	return img, nil
}

// Watch follows the bucket with a key-value watcher: an ordered consumer
// that gets the headers of new writes only (MetaOnly), no values.
func (s status) Watch(ctx context.Context, fn func(id string)) error {
	op := "status watch"
	if err := s.b.ready(op); err != nil {
		return err
	}
	w, err := s.b.kv.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.MetaOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		return wrap(op, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("natsbus: %s: the watcher stopped", op)
			}
			if e != nil { // nil marks the end of the initial values: none here
				fn(e.Key())
			}
		}
	}
}
