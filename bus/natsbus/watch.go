package natsbus

import (
	"context"
	"fmt"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// Watch feeds fn, one call at a time, with messages of q published after
// the watch started, or from stream sequence from on, through an ordered
// ephemeral consumer (no acks, no state on the server beyond the watch).
// It returns nil when ctx ends.
//
// Only fan-out queues can be watched: a work queue stream admits a single
// consumer per subject, and it belongs to the role that does the work.
func (b *Bus) Watch(ctx context.Context, q bus.Queue, from uint64, fn func(seq uint64, data []byte)) error {
	if err := knownQueue(q); err != nil {
		return err
	}
	if !fanOut(q) {
		return fmt.Errorf("natsbus: watch %s: only fan-out queues (%s) can be watched", q, bus.Activity)
	}
	if err := b.ready("watch " + string(q)); err != nil {
		return err
	}
	stream := b.names.stream(q)
	// Where a watch starts is read from the stream, whose leader answers,
	// rather than left to DeliverNew: on a cluster the consumer can be
	// placed on a replica that has not applied the latest messages yet,
	// and delivered one published before the watch started (seen once in
	// the conformance suite on a 3-node cluster).
	info, err := b.js.Stream(ctx, stream)
	if err != nil {
		return wrap("watch "+string(q), err)
	}
	next := info.CachedInfo().State.LastSeq + 1
	if from > 0 {
		// A sequence the stream no longer keeps starts at its first. One
		// it never reached (a position from a stream since recreated: a
		// data dir wiped, a new cluster) would wait for that sequence,
		// skipping everything before: it starts at the next message.
		next = min(from, next)
	}
	cfg := jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   next,
		// A watcher that vanishes (crash, lost connection) leaves a
		// consumer behind; the server drops it after this idle time.
		InactiveThreshold: 30 * time.Second,
	}
	cons, err := b.js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return wrap("watch "+string(q), err)
	}
	// The first pull of a consumer just created on a cluster can reach
	// its server before the consumer does, and be lost: the client only
	// notices when two heartbeats are missed, then recreates it. At the
	// ordered consumer's default (5 s) that left a watch deaf for 10 s.
	it, err := cons.Messages(jetstream.PullExpiry(watchExpiry), jetstream.PullHeartbeat(watchHeartbeat))
	if err != nil {
		return wrap("watch "+string(q), err)
	}
	defer func() {
		it.Stop()
		// Remove the server side now rather than after InactiveThreshold.
		if info := cons.CachedInfo(); info != nil && !b.nc.IsClosed() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = b.js.DeleteConsumer(dctx, stream, info.Name)
			cancel()
		}
	}()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// The ordered consumer recreates itself after gaps and
			// reconnects; what it returns here (the connection closed,
			// say) it could not fix.
			return wrap("watch "+string(q), err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return wrap("watch "+string(q), err)
		}
		fn(meta.Sequence.Stream, msg.Data())
	}
}

// An idle watch hears from the server every watchHeartbeat, and pulls
// anew every watchExpiry: a lost pull is noticed after two heartbeats are
// missed. Shorter, each /v1/events client would cost the servers more
// messages, and a stall that long would recreate its consumer.
const (
	watchHeartbeat = 2 * time.Second
	watchExpiry    = 10 * time.Second
)
