package natsbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// setup creates or updates every stream and bucket. Processes starting
// together race on it: CreateOrUpdate is idempotent for identical configs,
// and the one race it loses ("name already in use" when two creates cross
// with different configs, as during an upgrade) is retried, as are the
// moments when the servers are unreachable, until ctx ends.
func (b *Bus) setup(ctx context.Context) error {
	delay := 50 * time.Millisecond
	for {
		err := b.setupOnce(ctx)
		if err == nil {
			return nil
		}
		if !isUnavailable(err) && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			if misconfigured(err) {
				return fmt.Errorf("%w: %w", ErrMisconfigured, err)
			}
			return err
		}
		b.log.Debug("setup: retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			// Never connected, the requests only timed out: the reason
			// is in the last attempt to dial (refused, unknown host, TLS).
			if d := b.dialErr.Load(); d != nil && !b.nc.IsConnected() {
				err = fmt.Errorf("no server reached, the last attempt failed with: %w", *d)
			}
			return wrap("setup", errors.Join(ctx.Err(), err))
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

func (b *Bus) setupOnce(ctx context.Context) error {
	h, err := b.createStreams(ctx)
	if err != nil {
		return err
	}
	b.kv, b.meta, b.stage = h.status, h.meta, h.stage
	return nil
}

// ownStreams is how many streams setup makes: the queues', the status
// and meta buckets' and the stage's.
func ownStreams() int { return len(bus.Queues) + 3 }

// heal makes again the streams a server lost (its store wiped, a new
// server in its place), which a running process would otherwise never
// notice: its consumers could not be recreated, its reads would find no
// one to answer, and it would still say it is ready. The handles made at
// setup name the streams, so they work again as they are.
func (b *Bus) heal(ctx context.Context, why error) error {
	if _, err := b.createStreams(ctx); err != nil {
		return err
	}
	b.log.Warn("streams were missing from the server and are made again; what they held is lost", "why", why)
	// The store binding went with them: recorded again from what this
	// process checked at its start, so that the next process to start
	// with another store is refused, not taken as the first.
	if sb := b.bound.Load(); sb != nil {
		if _, err := b.BindStore(ctx, *sb, false); err != nil {
			b.log.Warn("store binding not recorded again", "err", err)
		}
	}
	return nil
}

// handles are what the bus keeps of the streams setup makes.
type handles struct {
	status, meta jetstream.KeyValue
	stage        jetstream.Stream
}

// createStreams creates or updates every stream and bucket.
func (b *Bus) createStreams(ctx context.Context) (h handles, err error) {
	for _, q := range bus.Queues {
		if _, err := b.js.CreateOrUpdateStream(ctx, b.streamConfig(q)); err != nil {
			return h, wrap("stream "+b.names.stream(q), err)
		}
	}
	h.status, err = b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.names.statusBucket(),
		Description: "imgpipe image status, JSON of model.Image by id",
		History:     1,
		TTL:         b.cfg.StatusTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    b.replicas,
	})
	if err != nil {
		return h, wrap("status bucket "+b.names.statusBucket(), err)
	}
	// Facts about the deployment, kept for good (no TTL): which store the
	// images are kept in (bind.go).
	h.meta, err = b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.names.metaBucket(),
		Description: "imgpipe deployment facts: the store the images are kept in",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    b.replicas,
	})
	if err != nil {
		return h, wrap("meta bucket "+b.names.metaBucket(), err)
	}
	// No TTL on staged blobs: save2db deletes them once persisted, and a
	// TTL would lose the bytes of an image stuck behind a long outage.
	h.stage, err = b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              b.names.stream(stageQueue),
		Description:       "imgpipe staged originals and results until save2db persists them",
		Subjects:          []string{b.names.wildcard(stageQueue)},
		Storage:           jetstream.FileStorage,
		Replicas:          b.replicas,
		MaxMsgsPerSubject: 1,
		AllowDirect:       true, // reads by subject without a consumer
		Discard:           jetstream.DiscardOld,
	})
	if err != nil {
		return h, wrap("stage stream "+b.names.stream(stageQueue), err)
	}
	return h, nil
}

func (b *Bus) streamConfig(q bus.Queue) jetstream.StreamConfig {
	sc := jetstream.StreamConfig{
		Name:        b.names.stream(q),
		Description: fmt.Sprintf("imgpipe %s queue", q),
		Subjects:    []string{b.names.wildcard(q)},
		Storage:     jetstream.FileStorage,
		Replicas:    b.replicas,
		Duplicates:  dupWindow,
		// Work queues: a message lives until one consumer acks it. A
		// second consumer with an overlapping filter is refused by the
		// server, which is what keeps "each message handled once" true.
		Retention: jetstream.WorkQueuePolicy,
	}
	if fanOut(q) {
		// Fan-out: every durable reads at its own pace; age bounds the
		// stream instead of acks (Interest retention would drop events
		// before a new logger durable ever saw them).
		sc.Retention = jetstream.LimitsPolicy
		sc.MaxAge = b.cfg.ActivityMaxAge
		if sc.MaxAge > 0 && sc.MaxAge < sc.Duplicates {
			sc.Duplicates = sc.MaxAge // the server refuses a window beyond MaxAge
		}
	}
	return sc
}
