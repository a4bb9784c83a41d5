package natsbus

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/imgpipe/imgpipe/bus"
)

// stage is bus.Stage on a plain stream read with direct gets.
//
// JetStream's object store would do, but every read of it creates and
// deletes an ordered consumer: about a millisecond of server work per blob,
// several times per image on the hot path. Here a blob is a head message,
// which carries the first chunk and is read with one direct get, plus
// further chunks only for blobs over chunkSize:
//
//	<prefix>.stage.<key>.h          head: chunk 0, chunk count, size, put id
//	<prefix>.stage.<key>.<put>.<n>  chunk n ≥ 1 of the put with that id
//
// <key> is the key in base64url, a single subject token. The stream keeps
// the last message per subject, so rewriting a key replaces its head. The
// head is published after its chunks and names their put id: a reader sees
// a whole blob, old or new, never a mix. Delete purges <key>.>, chunks of
// every put included.
type stage struct{ b *Bus }

// chunkSize keeps every message under NATS's default 1 MB payload limit.
const chunkSize = 512 << 10

// Headers of a head message.
const (
	hdrChunks = "Imgpipe-Chunks"
	hdrSize   = "Imgpipe-Size"
	hdrPut    = "Imgpipe-Put"
)

// Stage returns the staging area for blobs.
func (b *Bus) Stage() bus.Stage { return stage{b} }

func checkKey(key string) error {
	if key == "" || len(key) > 512 {
		return fmt.Errorf("natsbus: stage key %q must be 1 to 512 bytes", key)
	}
	return nil
}

func (s stage) keySubject(key string) string {
	return s.b.names.queueSubject(stageQueue) + "." + base64.RawURLEncoding.EncodeToString([]byte(key))
}

func (s stage) Put(ctx context.Context, key string, data []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	op := "stage put " + key
	ctx, done, err := s.b.beginWrite(ctx, op)
	if err != nil {
		return err
	}
	defer done()
	// Cached first, dropped if the publish fails: see blobCache.
	s.b.blobs.put(key, data)
	if err := s.publish(ctx, op, key, data); err != nil {
		s.b.blobs.forget(key)
		return err
	}
	return nil
}

// publish writes data's chunks, then its head.
func (s stage) publish(ctx context.Context, op, key string, data []byte) error {
	base := s.keySubject(key)
	put := nuid.Next()
	chunks := max(1, (len(data)+chunkSize-1)/chunkSize)
	// Chunks beyond the first go out together and are awaited together.
	var acks []jetstream.PubAckFuture
	for n := 1; n < chunks; n++ {
		part := data[n*chunkSize : min(len(data), (n+1)*chunkSize)]
		f, err := s.b.js.PublishMsgAsync(&nats.Msg{Subject: base + "." + put + "." + strconv.Itoa(n), Data: part})
		if err != nil {
			return s.b.fail(ctx, op, err)
		}
		acks = append(acks, f)
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return s.b.fail(ctx, op, err)
		case <-ctx.Done():
			return s.b.fail(ctx, op, ctx.Err())
		}
	}
	head := &nats.Msg{Subject: base + ".h", Data: data[:min(len(data), chunkSize)], Header: nats.Header{}}
	head.Header.Set(hdrChunks, strconv.Itoa(chunks))
	head.Header.Set(hdrSize, strconv.Itoa(len(data)))
	head.Header.Set(hdrPut, put)
	_, err := s.b.js.PublishMsg(ctx, head)
	return s.b.fail(ctx, op, err)
}

// Get answers from the process's cache of blobs, or reads with direct
// gets, which any replica may answer.
func (s stage) Get(ctx context.Context, key string) ([]byte, error) {
	if data, ok := s.b.blobs.get(key); ok {
		return data, nil
	}
	return s.readThrough(ctx, key, "stage get ", s.b.stage.GetLastMsgForSubject)
}

// GetChecked is bus.CheckedStage's: only a cached copy is hashed.
func (s stage) GetChecked(ctx context.Context, key, sha256Hex string) ([]byte, error) {
	if data, ok := s.b.blobs.get(key); ok {
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) == sha256Hex {
			return data, nil
		}
		return s.GetLatest(ctx, key)
	}
	return s.readThrough(ctx, key, "stage get ", s.b.stage.GetLastMsgForSubject)
}

// GetLatest reads through the stream's leader (see leaderGet), never from
// the cache, and drops what the cache held: it is the last look before a
// blob is taken for lost, and the read that replaces a cached blob found
// stale (bus.CheckedStage).
func (s stage) GetLatest(ctx context.Context, key string) ([]byte, error) {
	s.b.blobs.forget(key) // a copy found stale must not outlive the blob
	return s.readThrough(ctx, key, "stage get latest ", s.leaderGet)
}

// readThrough is get, keeping what it read in the cache for the next
// reader, unless a delete of key came meanwhile.
func (s stage) readThrough(ctx context.Context, key, what string, read func(context.Context, string) (*jetstream.RawStreamMsg, error)) ([]byte, error) {
	return s.b.blobs.read(key, func() ([]byte, error) { return s.get(ctx, key, what, read) })
}

// get reads key's head, then its further chunks, each with read.
func (s stage) get(ctx context.Context, key, what string, read func(context.Context, string) (*jetstream.RawStreamMsg, error)) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	op := what + key
	ctx, done, err := s.b.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	defer done()
	base := s.keySubject(key)
	head, err := read(ctx, base+".h")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("natsbus: %s: %w", op, bus.ErrNotFound)
	}
	if err != nil {
		return nil, s.b.fail(ctx, op, err)
	}
	chunks, err1 := strconv.Atoi(head.Header.Get(hdrChunks))
	size, err2 := strconv.Atoi(head.Header.Get(hdrSize))
	if err := errors.Join(err1, err2); err != nil || chunks < 1 || size < len(head.Data) {
		return nil, fmt.Errorf("natsbus: %s: malformed head: %v", op, err)
	}
	if chunks == 1 {
		return head.Data, nil
	}
	data := make([]byte, 0, size)
	data = append(data, head.Data...)
	put := head.Header.Get(hdrPut)
	for n := 1; n < chunks; n++ {
		m, err := read(ctx, base+"."+put+"."+strconv.Itoa(n))
		if err != nil {
			return nil, s.b.fail(ctx, op, fmt.Errorf("chunk %d of %d: %w", n, chunks, err))
		}
		data = append(data, m.Data...)
	}
	if len(data) != size {
		return nil, fmt.Errorf("natsbus: %s: %d bytes read, head says %d", op, len(data), size)
	}
	return data, nil
}

// Delete is idempotent: a missing key is not an error, since a redelivered
// save may delete the same blobs twice.
func (s stage) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	op := "stage delete " + key
	ctx, done, err := s.b.beginWrite(ctx, op)
	if err != nil {
		return err
	}
	defer done()
	err = s.b.stage.Purge(ctx, jetstream.WithPurgeSubject(s.keySubject(key)+".>"))
	s.b.blobs.forget(key) // after the purge: see blobCache
	return s.b.fail(ctx, op, err)
}

// leaderGet reads the last message on subject of the stage stream through
// its leader (see Bus.leaderGet). Direct gets, which Get uses, may be
// answered by any replica: a replica catching up after a restart can miss
// a blob staged a moment ago. Taken for good, that miss would fail a
// healthy image ("neither staged nor stored"), so the roles ask again with
// GetLatest before concluding a blob is gone.
func (s stage) leaderGet(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	return s.b.leaderGet(ctx, s.b.names.stream(stageQueue), subject)
}
