package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/internal/loglimit"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bus is bus.Bus on NATS JetStream. It is safe for concurrent use.
type Bus struct {
	cfg      Config
	names    names
	replicas int
	log      *slog.Logger

	nc *nats.Conn
	js jetstream.JetStream
	kv jetstream.KeyValue
	// meta holds deployment facts (bind.go); bound is the store binding
	// this process read or made there, which heal records again.
	meta  jetstream.KeyValue
	bound atomic.Pointer[bus.StoreBinding]
	// stage is the stream behind Stage; its handle knows AllowDirect, so
	// reads by subject use direct gets.
	stage jetstream.Stream
	revs  *revisions // of status records, see revisions.go
	blobs *blobCache // of staged blobs, see stagecache.go

	inProcess bool // connected to an embedded server without TCP

	server   *Embedded     // owned (OpenEmbedded): shut down by Close
	guard    *storeGuard   // of an embedded server's JetStream, see storeguard.go
	closedCh chan struct{} // closed by the connection's ClosedHandler
	conn     connState
	// dialErr is why the last attempt to reach a server failed, while no
	// connection is up: what a setup that timed out reports as its cause.
	dialErr atomic.Pointer[error]

	asyncErrs atomic.Uint64
	asyncLog  loglimit.Limiter

	mu        sync.Mutex
	consumers map[*consumer]struct{}
	closing   bool
	closeOnce sync.Once
	closeErr  error
}

var _ bus.Bus = (*Bus)(nil)

const (
	// dupWindow is how long a Message.ID deduplicates re-publishes: long
	// enough to cover a client's retries after a lost PubAck.
	dupWindow = 2 * time.Minute
	// asyncAckTimeout fails an async publish whose PubAck never comes, so
	// that Flush cannot wait forever.
	asyncAckTimeout = 30 * time.Second
	// closeTimeout bounds Close: flush, drain of forgotten consumers and
	// of the connection.
	closeTimeout = 10 * time.Second
)

// Connect joins the servers of cfg.URL, or the in-process server embedded
// when not nil, and creates or updates the streams and buckets. Many
// processes may Connect at once: setup is idempotent. While the servers are
// unreachable Connect keeps retrying until ctx ends; after it returns the
// connection reconnects forever by itself. instance names the connection
// (visible in the server's connection list).
func Connect(ctx context.Context, cfg Config, embedded *server.Server, instance string, log *slog.Logger) (*Bus, error) {
	if embedded == nil {
		return connect(ctx, cfg, nil, instance, log)
	}
	return connect(ctx, cfg, fixed{embedded}, instance, log)
}

// ConnectEmbedded is Connect to a restartable embedded server: when a full
// disk has left its store refusing writes, the bus restarts it once there
// is room again (see storeGuard).
func ConnectEmbedded(ctx context.Context, cfg Config, e *Embedded, instance string, log *slog.Logger) (*Bus, error) {
	if e == nil {
		return nil, errors.New("natsbus: no embedded server")
	}
	return connect(ctx, cfg, e, instance, log)
}

func connect(ctx context.Context, cfg Config, embedded localServer, instance string, log *slog.Logger) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	b := &Bus{
		cfg:       cfg,
		names:     names{cfg.Prefix},
		replicas:  cfg.Replicas,
		log:       log,
		closedCh:  make(chan struct{}),
		revs:      newRevisions(4096),
		blobs:     newBlobCache(cfg.StageCacheBytes),
		consumers: make(map[*consumer]struct{}),
	}
	b.conn.up()

	url := cfg.URL
	opts := b.connOptions(instance)
	if embedded != nil {
		// One embedded node can only hold R1 streams.
		if b.replicas != 1 {
			b.log.Info("embedded server: using 1 replica", "configured", b.replicas)
			b.replicas = 1
		}
		url = ""
		opts = append(opts, nats.InProcessServer(embedded))
		b.inProcess = true
	} else if url == "" {
		return nil, errors.New("natsbus: no url and no embedded server")
	}

	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, wrap("connect", err)
	}
	b.nc = nc
	b.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.AsyncMaxPending),
		jetstream.WithPublishAsyncTimeout(asyncAckTimeout),
		jetstream.WithPublishAsyncErrHandler(b.asyncFailed),
	)
	if err != nil {
		nc.Close()
		return nil, wrap("jetstream", err)
	}
	if err := b.setup(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	if embedded != nil {
		b.guard = guardServer(embedded, log)
	}
	return b, nil
}

// OpenEmbedded starts an embedded server and connects to it; the Bus owns
// the server and shuts it down on Close.
func OpenEmbedded(ctx context.Context, cfg Config, eo EmbeddedOptions, instance string, log *slog.Logger) (*Bus, error) {
	e, err := StartEmbeddedServer(eo, log)
	if err != nil {
		return nil, err
	}
	b, err := ConnectEmbedded(ctx, cfg, e, instance, log)
	if err != nil {
		e.Shutdown()
		return nil, err
	}
	b.server = e
	return b, nil
}

func (b *Bus) connOptions(instance string) []nats.Option {
	return []nats.Option{
		nats.Name(instance),
		// Never give up: a role outlives any outage of the bus; Ping
		// reports the outage meanwhile.
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.DrainTimeout(closeTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.conn.down()
			if err != nil {
				b.log.Warn("disconnected", "err", err)
			}
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.dialErr.Store(&err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.dialErr.Store(nil)
			b.conn.up()
			b.log.Info("reconnected", "server", b.serverName(nc))
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			b.dialErr.Store(nil)
			b.conn.up()
			b.log.Info("connected", "server", b.serverName(nc))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{"err", err}
			if sub != nil {
				attrs = append(attrs, "subject", sub.Subject)
			}
			b.log.Warn("async error", attrs...)
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			b.conn.down()
			close(b.closedCh)
		}),
	}
}

// reconnectDelay backs off exponentially from 100ms to 5s with jitter, so
// that a fleet of processes does not reconnect in lockstep.
func reconnectDelay(attempts int) time.Duration {
	d := 5 * time.Second
	if attempts < 6 {
		d = min(d, 100*time.Millisecond<<attempts)
	}
	return d/2 + rand.N(d/2+1)
}

// Ping checks the connection and that JetStream answers.
func (b *Bus) Ping(ctx context.Context) error {
	ctx, done, err := b.begin(ctx, "ping")
	if err != nil {
		return err
	}
	defer done()
	if err := b.guard.err(); err != nil {
		return fmt.Errorf("natsbus: ping: %w", err)
	}
	ai, err := b.js.AccountInfo(ctx)
	if err != nil {
		// Whatever the cause, the bus is not usable: report it as such.
		return fmt.Errorf("natsbus: ping: %w: %w", bus.ErrUnavailable, err)
	}
	if ai.Streams < ownStreams() {
		// Fewer streams than this bus made: the server lost some. (In an
		// account shared with others a loss can hide behind their
		// streams; a consumer that finds its stream gone heals it too.)
		if err := b.heal(ctx, fmt.Errorf("the account holds %d streams", ai.Streams)); err != nil {
			return fmt.Errorf("natsbus: ping: %w: %w", bus.ErrUnavailable, err)
		}
	}
	return nil
}

// AsyncErrors counts PublishAsync messages that failed after PublishAsync
// returned (for a metric: each is also logged, rate-limited).
func (b *Bus) AsyncErrors() uint64 { return b.asyncErrs.Load() }

// serverName is the server the connection reached, for the log.
func (b *Bus) serverName(nc *nats.Conn) string {
	if b.inProcess {
		return "in-process" // the client reports its default URL, which nothing listens on
	}
	// Without any credentials: the client's redaction hides a password,
	// not a token given as the user (nats://token@host).
	u, err := url.Parse(nc.ConnectedUrl())
	if err != nil {
		return ""
	}
	u.User = nil
	return u.String()
}
