package natsbus

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/imgpipe/imgpipe/bus"
)

// Config shapes the connection and the streams. The zero value is not
// usable: start from DefaultConfig.
type Config struct {
	// URL lists the servers, comma-separated ("nats://a:4222,nats://b:4222").
	// Ignored when Connect is given an embedded server.
	URL string `mapstructure:"url"`
	// Replicas of every stream and bucket: 1 for a single server, 3 for a
	// cluster (survives one node). Forced to 1 with an embedded server.
	Replicas int `mapstructure:"replicas"`
	// StatusTTL is how long a status record lives after its last write;
	// 0 keeps records forever.
	StatusTTL time.Duration `mapstructure:"status_ttl"`
	// ActivityMaxAge is how long activity events stay in the stream for
	// consumers that fall behind and for replay; 0 keeps them forever.
	ActivityMaxAge time.Duration `mapstructure:"activity_max_age"`
	// Retry is the redelivery policy of failing handlers.
	Retry bus.Retry `mapstructure:"retry"`
	// AckWait is how long a handler may run, from its start or its last
	// InProgress, before it is deemed hung and its delivery handed to
	// another worker. It must cover the slowest handler between two
	// InProgress calls: for transform, one render (up to
	// transform.timeout, which the app checks) plus fetching and staging.
	// It is also the server's deadline for a delivery whose worker died,
	// unless the consumer sets a shorter one (bus.ConsumerConfig.AckWait):
	// the bus then keeps a running handler's delivery alive with
	// heartbeats (keepAlive).
	AckWait time.Duration `mapstructure:"ack_wait"`
	// MaxAckPending bounds unacknowledged deliveries per durable consumer
	// across every process; 0 leaves the server default (1000).
	MaxAckPending int `mapstructure:"max_ack_pending"`
	// AsyncMaxPending bounds PublishAsync messages awaiting their ack;
	// beyond it PublishAsync fails rather than grows memory.
	AsyncMaxPending int `mapstructure:"async_max_pending"`
	// Prefix starts every subject, stream and bucket name, so that two
	// deployments (or two tests) can share one cluster.
	Prefix string `mapstructure:"prefix"`
	// SyncAlways has the server that `imgpipe dev` embeds fsync every
	// write before acknowledging it, so that an accepted upload survives
	// a power loss too, not only a crash of the process. Off, it syncs
	// every two minutes, as NATS does by default. A cluster's servers
	// have their own setting (sync_interval: always).
	SyncAlways bool `mapstructure:"sync_always"`
	// StageCacheBytes bounds the process's memory of the blobs it staged
	// or read lately, which its roles then read without a round trip to
	// the server (see blobCache); 0 turns it off.
	StageCacheBytes int64 `mapstructure:"stage_cache_bytes"`
}

// DefaultConfig returns the settings for a single local server.
func DefaultConfig() Config {
	return Config{
		URL:             "nats://127.0.0.1:4222",
		Replicas:        1,
		StatusTTL:       7 * 24 * time.Hour,
		ActivityMaxAge:  24 * time.Hour,
		Retry:           bus.DefaultRetry,
		AckWait:         2 * time.Minute, // beyond the transform timeout (60 s) and the staging around it
		AsyncMaxPending: 4096,
		Prefix:          "imgpipe",
		StageCacheBytes: 32 << 20,
	}
}

// prefixRe keeps the prefix usable as a subject token, a stream name (once
// upper-cased) and a bucket name. Lower case only, so that two prefixes
// differing in case cannot map to the same stream.
var prefixRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// Validate reports every invalid field at once, each by its key in
// imgpipe's configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("nats.replicas must be 1..5, got %d", c.Replicas))
	}
	if c.StatusTTL < 0 {
		errs = append(errs, errors.New("nats.status_ttl must not be negative"))
	}
	if c.ActivityMaxAge < 0 {
		errs = append(errs, errors.New("nats.activity_max_age must not be negative"))
	}
	// A finite MaxDeliver is what makes LastAttempt meaningful.
	if c.Retry.MaxDeliver < 1 {
		errs = append(errs, fmt.Errorf("nats.retry.max_deliver must be at least 1, got %d", c.Retry.MaxDeliver))
	}
	for _, d := range c.Retry.Backoff {
		if d < 0 {
			errs = append(errs, errors.New("nats.retry.backoff must not hold negative durations"))
			break
		}
	}
	if c.AckWait <= 0 {
		errs = append(errs, errors.New("nats.ack_wait must be positive"))
	}
	if c.MaxAckPending < 0 {
		errs = append(errs, errors.New("nats.max_ack_pending must not be negative"))
	}
	if c.StageCacheBytes < 0 {
		errs = append(errs, errors.New("nats.stage_cache_bytes must not be negative"))
	}
	if c.AsyncMaxPending < 1 {
		errs = append(errs, errors.New("nats.async_max_pending must be at least 1"))
	}
	if !prefixRe.MatchString(c.Prefix) {
		errs = append(errs, fmt.Errorf("nats.prefix %q must match %s", c.Prefix, prefixRe))
	}
	return errors.Join(errs...)
}
