package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/imgpipe/imgpipe/bus"
)

// storeKey is the meta bucket's key for bus.StoreBinding.
const storeKey = "store"

// kvOperationHeader marks a KV delete or purge; a put has none.
const kvOperationHeader = "KV-Operation"

// BindStore records sb under storeKey with a create, which only the first
// of processes starting together wins; the others read the winner's.
func (b *Bus) BindStore(ctx context.Context, sb bus.StoreBinding, replace bool) (bus.StoreBinding, error) {
	data, err := json.Marshal(sb)
	if err != nil {
		return bus.StoreBinding{}, err
	}
	const op = "bind store"
	ctx, done, err := b.beginWrite(ctx, op)
	if err != nil {
		return bus.StoreBinding{}, err
	}
	defer done()
	if replace {
		if _, err = b.meta.Put(ctx, storeKey, data); err == nil {
			err = b.purgeStatus(ctx)
		}
	} else {
		_, err = b.meta.Create(ctx, storeKey, data)
	}
	if err == nil {
		b.bound.Store(&sb)
		return sb, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return bus.StoreBinding{}, b.fail(ctx, op, err)
	}
	// Read through the leader: a replica's direct get may not have the
	// create that just refused ours (seen on a three-server cluster as
	// "key not found" right after "key exists").
	got, err := b.readBinding(ctx)
	if err != nil {
		return bus.StoreBinding{}, b.fail(ctx, op, err)
	}
	if got.Store == sb.Store {
		b.bound.Store(&got) // what heal records again; never another store's
	}
	return got, nil
}

// BoundStore reads the binding from the meta bucket's leader.
func (b *Bus) BoundStore(ctx context.Context) (bus.StoreBinding, error) {
	const op = "read the store binding"
	ctx, done, err := b.begin(ctx, op)
	if err != nil {
		return bus.StoreBinding{}, err
	}
	defer done()
	sb, err := b.readBinding(ctx)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return sb, fmt.Errorf("natsbus: %s: %w", op, bus.ErrNotFound)
	}
	if err != nil {
		return sb, b.fail(ctx, op, err)
	}
	return sb, nil
}

// readBinding reads the binding through the meta bucket's stream leader.
func (b *Bus) readBinding(ctx context.Context) (bus.StoreBinding, error) {
	bucket := b.names.metaBucket()
	msg, err := b.leaderGet(ctx, "KV_"+bucket, "$KV."+bucket+"."+storeKey)
	if err != nil {
		return bus.StoreBinding{}, err
	}
	if len(msg.Data) == 0 && msg.Header.Get(kvOperationHeader) != "" {
		// A delete marker (an operator's `nats kv del`): no binding.
		return bus.StoreBinding{}, jetstream.ErrMsgNotFound
	}
	var sb bus.StoreBinding
	if err := json.Unmarshal(msg.Data, &sb); err != nil || sb.Store == "" {
		return bus.StoreBinding{}, fmt.Errorf("natsbus: the store binding in bucket %s is unreadable (%v): %q", bucket, err, msg.Data)
	}
	return sb, nil
}

// purgeStatus empties the status table (see bus.Bus.BindStore). Work still
// queued is done all the same: the transformer writes a record that is
// missing, and save2db stores it in the new store.
func (b *Bus) purgeStatus(ctx context.Context) error {
	st, err := b.js.Stream(ctx, "KV_"+b.names.statusBucket())
	if err == nil {
		// A revision this process remembers is refused by the server's
		// compare-and-set from now on, which then reads afresh.
		err = st.Purge(ctx)
	}
	return err
}
