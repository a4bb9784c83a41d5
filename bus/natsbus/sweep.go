package natsbus

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/imgpipe/imgpipe/bus"
)

// What a sweep of the stage needs: the heads of blobs written before a
// time, without their bytes, and a delete that spares a blob written again
// meanwhile. Both are rare (save2db sweeps once an hour), so they may cost
// an ordered consumer and API requests.

// Staged reads the heads' headers only, with an ordered consumer: a head
// carries up to chunkSize bytes, and a backlog of staged originals may be
// large. Stream order is write order, so it stops at the first head
// written after the cut. The cut is age before the stream's last message,
// both stamped by the server: a sweeper whose clock ran an hour ahead
// would otherwise take a blob staged a moment ago for an old one.
func (s stage) Staged(ctx context.Context, age time.Duration, fn func(bus.StagedBlob) error) error {
	op := "stage list"
	ctx, done, err := s.b.begin(ctx, op)
	if err != nil {
		return err
	}
	defer done()
	info, err := s.b.stage.Info(ctx)
	if err != nil {
		return s.b.fail(ctx, op, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	before := info.State.LastTime.Add(-age)
	prefix := s.b.names.queueSubject(stageQueue) + "."
	cons, err := s.b.stage.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{prefix + "*.h"},
		HeadersOnly:    true,
	})
	if err != nil {
		return s.b.fail(ctx, op, err)
	}
	// On a cluster, the new consumer's interest reaches the other servers
	// a moment after it is made: a fetch before then finds no responders,
	// which is waited out, briefly.
	for waits := 0; ; {
		n := 0
		batch, err := cons.FetchNoWait(256)
		if err == nil {
			for msg := range batch.Messages() {
				n++
				md, err := msg.Metadata()
				if err != nil {
					return s.b.fail(ctx, op, err)
				}
				if !md.Timestamp.Before(before) {
					return nil
				}
				token := strings.TrimSuffix(strings.TrimPrefix(msg.Subject(), prefix), ".h")
				key, err := base64.RawURLEncoding.DecodeString(token)
				if err != nil {
					continue // not a head this package wrote
				}
				blob := bus.StagedBlob{Key: string(key), Written: md.Timestamp, Version: strconv.FormatUint(md.Sequence.Stream, 10)}
				if err := fn(blob); err != nil {
					return err
				}
				if md.NumPending == 0 {
					return nil
				}
			}
			err = batch.Error()
		}
		switch {
		case errors.Is(err, nats.ErrNoResponders) && n == 0 && waits < 40:
			waits++
			select {
			case <-ctx.Done():
				return s.b.fail(ctx, op, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
			continue
		case err != nil && !errors.Is(err, jetstream.ErrNoMessages):
			return s.b.fail(ctx, op, err)
		case n == 0:
			return nil
		}
	}
}

// DeleteVersion deletes the listed write's further chunks, named by its
// put id, then its head by sequence, which fails once a newer write has
// replaced it (the stream keeps one message per subject). A newer write's
// chunks carry another put id and stay.
func (s stage) DeleteVersion(ctx context.Context, key, version string) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	seq, err := strconv.ParseUint(version, 10, 64)
	if err != nil {
		return false, fmt.Errorf("natsbus: stage version %q of %s: %w", version, key, err)
	}
	op := "stage delete version " + key
	ctx, done, err := s.b.beginWrite(ctx, op)
	if err != nil {
		return false, err
	}
	defer done()
	defer s.b.blobs.forget(key) // after the delete: see blobCache
	base := s.keySubject(key)
	head, err := s.leaderGet(ctx, base+".h")
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false, nil
	case err != nil:
		return false, s.b.fail(ctx, op, err)
	case head.Sequence != seq:
		return false, nil
	}
	// Chunks first: their put id is this write's alone, and a head left
	// behind by a failure here is listed and deleted again next time,
	// where chunks without their head would be found by nothing.
	if put := head.Header.Get(hdrPut); put != "" {
		if err := s.b.stage.Purge(ctx, jetstream.WithPurgeSubject(base+"."+put+".>")); err != nil {
			return false, s.b.fail(ctx, op, err)
		}
	}
	if err := s.b.stage.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
			return false, nil
		}
		return false, s.b.fail(ctx, op, err)
	}
	return true, nil
}

// Queued asks the queue's leader for the last message on subject: in a
// work queue, a message stays until a consumer settles it.
func (b *Bus) Queued(ctx context.Context, q bus.Queue, subject string) (bool, error) {
	if err := knownQueue(q); err != nil {
		return false, err
	}
	if fanOut(q) {
		return false, fmt.Errorf("natsbus: %s is not a work queue", q)
	}
	if err := checkSubject(subject, false); err != nil {
		return false, err
	}
	op := "queued " + string(q) + " " + subject
	ctx, done, err := b.begin(ctx, op)
	if err != nil {
		return false, err
	}
	defer done()
	_, err = b.leaderGet(ctx, b.names.stream(q), b.names.subject(q, subject))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false, nil
	case err != nil:
		return false, b.fail(ctx, op, err)
	}
	return true, nil
}
