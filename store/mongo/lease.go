package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// A blob lease gives one writer the right to touch a key's GridFS documents.
// The file id is the key, so two writers of one key share a files_id: the
// driver's Abort, and clearing the chunks of a previous version, would
// delete the other writer's chunks. The lease is a document in
// blobs.leases with _id = key: inserting it takes it, a duplicate key
// means someone else holds it. A holder that dies leaves it to expire, after
// which another writer takes it over.
//
// A lease cannot stop a holder that outlives it (stalled past its expiry by
// a partition or a paused VM, then carrying on) from writing: the fence is
// in what it writes. Its chunks and files document carry its owner token,
// and cleaning up after a failed upload deletes only documents with that
// token, so a stale writer cannot remove the file its successor completed;
// the unique (files_id, n) index keeps its late chunks from mixing into
// that file; and before clearing a key, the holder renews the lease, so a
// writer that lost it stops there. What is left is a writer stalled past
// its lease between that renewal and the clear: without transactions
// (FerretDB, a standalone MongoDB) nothing closes it. Keys name content,
// so the successor's next write would usually bring back the same bytes.

// Lease length: long enough for the upload at a slow 1 MiB/s plus half a
// minute, which also absorbs clock differences between writers up to that.
const (
	leaseBase = 30 * time.Second
	leaseRate = 1 << 20 // bytes per second

	leaseOpLimit = 10 * time.Second // one lease operation
	releaseLimit = 10 * time.Second // cleanups after a failure
)

type lease struct {
	s     *Store
	key   string
	owner string
}

// acquireLease takes the key's lease, or returns nil if another writer
// holds it.
//
// The lease operations run on their own short deadline rather than the
// caller's: an insert cut off by the caller's timeout may still land on the
// server after our attempt to undo it, blocking the key until the lease
// expires. The caller's context is checked once the outcome is known.
func (s *Store) acquireLease(ctx context.Context, key string, size int) (*lease, error) {
	var rnd [16]byte
	_, _ = rand.Read(rnd[:]) // never fails
	l := &lease{s: s, key: key, owner: hex.EncodeToString(rnd[:])}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaseOpLimit)
	defer cancel()
	ok, err := l.take(opCtx, size)
	if err != nil {
		l.release(ctx) // the insert may have landed all the same
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		l.release(ctx)
		return nil, err
	}
	return l, nil
}

// take inserts the lease document, or takes over an expired one.
func (l *lease) take(ctx context.Context, size int) (bool, error) {
	now := time.Now()
	expires := now.Add(leaseFor(size))
	_, err := l.s.leases.InsertOne(ctx, bson.D{{Key: "_id", Value: l.key}, {Key: "owner", Value: l.owner}, {Key: "expires", Value: expires}})
	if err == nil {
		return true, nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return false, err
	}
	// Held: take it over only if it has run out. The filter makes this
	// atomic: of two writers taking over, one matches.
	res, err := l.s.leases.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: l.key}, {Key: "expires", Value: bson.D{{Key: "$lt", Value: now}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "owner", Value: l.owner}, {Key: "expires", Value: expires}}}})
	if err != nil || res.MatchedCount == 0 {
		return false, err
	}
	// Its holder died, or is still writing on a store slow enough to
	// outlast the lease (save2db's message is then handed to another
	// worker meanwhile): the fence above keeps either harmless.
	l.s.log.Warn("took over an expired blob lease: its writer died or outlasted the lease", "key", l.key)
	return true, nil
}

// errLeaseLost: the lease ran out and another writer took it over.
var errLeaseLost = errors.New("the blob's lease ran out and another writer took it over")

// renew extends the lease if it is still ours, and fails with errLeaseLost
// otherwise.
func (l *lease) renew(ctx context.Context, size int) error {
	ctx, cancel := context.WithTimeout(ctx, leaseOpLimit)
	defer cancel()
	res, err := l.s.leases.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: l.key}, {Key: "owner", Value: l.owner}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: time.Now().Add(leaseFor(size))}}}})
	switch {
	case err != nil:
		return err
	case res.MatchedCount == 0:
		return errLeaseLost
	}
	return nil
}

// leaseFor is the lease length for a blob of size bytes.
func leaseFor(size int) time.Duration {
	return leaseBase + time.Duration(size)*time.Second/leaseRate
}

// release drops the lease if still ours. It runs even when the request was
// canceled (a fresh, bounded context); if it fails, the lease expires.
func (l *lease) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseLimit)
	defer cancel()
	_, err := l.s.leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: l.key}, {Key: "owner", Value: l.owner}})
	if err != nil {
		if ok, suppressed := l.s.releaseLog.Allow(); ok { // an outage fails every release at once
			l.s.log.Warn("could not release a blob lease; it will expire", "key", l.key, "err", err, "suppressed", suppressed)
		}
	}
}
