package natsbus

import (
	"context"
	"errors"
	"fmt"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// stage is bus.Stage on a JetStream object store: blobs go in 128 KiB
// chunks with a SHA-256 digest checked on read, so they are not bound by
// the 1 MB message limit. Keys such as "results/<id>/<variant>" are fine:
// object names are encoded before they reach a subject.
type stage struct{ b *Bus }

// Stage returns the staging area for blobs.
func (b *Bus) Stage() bus.Stage { return stage{b} }

func checkKey(key string) error {
	if key == "" || len(key) > 512 {
		return fmt.Errorf("natsbus: stage key %q must be 1 to 512 bytes", key)
	}
	return nil
}

func (s stage) Put(ctx context.Context, key string, data []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	op := "stage put " + key
	ctx, done, err := s.b.begin(ctx, op)
	if err != nil {
		return err
	}
	defer done()
	// PutBytes reads data in place, chunk by chunk: no full copy.
	_, err = s.b.obs.PutBytes(ctx, key, data)
	return s.b.fail(ctx, op, err)
}

func (s stage) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	op := "stage get " + key
	ctx, done, err := s.b.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	defer done()
	data, err := s.b.obs.GetBytes(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("natsbus: %s: %w", op, bus.ErrNotFound)
	}
	if err != nil {
		return nil, s.b.fail(ctx, op, err)
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
	ctx, done, err := s.b.begin(ctx, op)
	if err != nil {
		return err
	}
	defer done()
	err = s.b.obs.Delete(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	}
	return s.b.fail(ctx, op, err)
}
