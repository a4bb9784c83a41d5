// Package bus is the publish/subscribe backbone between roles. Bus is the
// interface the roles use; the NATS JetStream implementation lives in
// bus/natsbus. Image bytes never ride in messages: they are staged in
// Bus.Stage and messages carry ids.
package bus

import (
	"context"
	"errors"
	"time"

	"github.com/imgpipe/imgpipe/model"
)

// Queue names a stream of work with its routing rule.
type Queue string

const (
	// Transform carries uploads to the transform role (work queue: each
	// message goes to one transformer).
	Transform Queue = "transform"
	// Save carries records and results to save2db (work queue).
	Save Queue = "save"
	// Activity carries events to the logger and to live feeds (fan-out:
	// every durable consumer sees every event).
	Activity Queue = "activity"
)

// Queues lists every queue, for setup and docs.
var Queues = []Queue{Transform, Save, Activity}

// Message is one publish. Subject is appended to the queue's subject prefix
// for routing (for example the image id); ID deduplicates retried publishes.
type Message struct {
	Queue   Queue
	Subject string
	ID      string
	Data    []byte
}

// Delivery is one received message. The handler's return decides its fate:
// nil acks it, an error asks for redelivery after a backoff, and an error
// wrapped with Permanent terminates it without retry.
type Delivery interface {
	Subject() string
	Data() []byte
	// Attempt counts deliveries of this message, from 1.
	Attempt() int
	// LastAttempt is true when a failure now will not be retried; the
	// handler must record the failure itself before returning. It is also
	// true when Exhausted is.
	LastAttempt() bool
	// Exhausted is true when the attempts are used up and the last one
	// ended without a verdict: the worker that had it died, stalled past
	// the ack deadline, panicked, or was cut short by a hard shutdown, or
	// it never began at all (a process that dies takes with it the
	// deliveries it had fetched but not begun, and each counts). This
	// delivery is one more, given so that the failure is recorded rather than the message
	// silently dropped; if its own worker dies before returning, a few
	// more may follow, Exhausted too. If the last attempt began, the
	// handler must record the failure WITHOUT attempting the work again
	// (it may be the work that kills the process); if the handler knows it
	// never began, this delivery may be that attempt. Its return value
	// then settles the message: nil acks it, an error terminates it, and
	// it is never redelivered after that (a panic, though, counts as a
	// dead worker).
	Exhausted() bool
	// MaxAttempts is how many attempts the message gets before its
	// Exhausted deliveries; 0 when it is retried for ever.
	MaxAttempts() int
	// Final is true when no delivery will follow this one whatever
	// happens to it: the last Exhausted one. A handler doing work on an
	// Exhausted delivery must not do it on this one, since if its worker
	// died then, nothing would record the outcome.
	Final() bool
	// InProgress tells the bus the handler is still working, pushing back
	// the redelivery deadline.
	InProgress()
	// SettleAfter holds the settlement the handler's return decides (ack,
	// redelivery or term) until ready is closed, without holding the
	// worker: the handler's buffered side effects (activity batches) are
	// made durable before the message is acknowledged, so a crash cannot
	// lose them while the message counts as handled. Drain waits for held
	// settlements; a hard shutdown settles them at once, and so does half
	// the bus's own ack deadline passing (after it, a redelivery would
	// repeat work whose outcome is known; a consumer's shorter deadline is
	// kept from passing meanwhile).
	SettleAfter(ready <-chan struct{})
}

// Handler processes one delivery.
type Handler func(ctx context.Context, d Delivery) error

// ConsumerConfig shapes one durable subscription.
type ConsumerConfig struct {
	Queue   Queue
	Durable string // shared name: processes using it split the work
	// Workers is how many deliveries are handled at once in this process.
	Workers int
	// Filter narrows the queue's subjects (for example "done.*"); empty
	// means all.
	Filter string
	// Retry overrides the bus's redelivery policy for this consumer.
	Retry *Retry
	// AckWait is how soon a delivery comes again when its worker died or
	// it was lost on a connection that failed over; 0, or longer than the
	// bus's own deadline, keeps the bus's. It does not hurry a slow
	// handler: while one runs, the bus keeps its delivery alive for as
	// long as the bus's own deadline lets a handler run (from its start or
	// its last InProgress). A handler past that is deemed hung, and its
	// delivery comes again AckWait later.
	AckWait time.Duration
	// NoPrefetch has each worker ask for its next delivery only once it
	// is free, instead of the process fetching ahead of its workers. Every
	// delivery the process holds is then taken by a worker and kept alive
	// (in its handler, or waiting on SettleAfter), and none waits here
	// behind busy workers, its AckWait running, while another process has
	// a free one. It is for long handlers, beside which the ask's round
	// trip is nothing.
	NoPrefetch bool
}

// Consumer is a running subscription.
type Consumer interface {
	// Drain stops fetching, waits for handlers in flight (bounded by ctx),
	// and returns.
	Drain(ctx context.Context) error
}

// Stage holds blobs between roles until save2db has persisted them.
//
// Putting a key again replaces its bytes, but an implementation may keep
// blobs in memory, and a process may go on reading what it staged or read
// before: after another process staged the key again, or deleted it,
// until it lets its copy go. The roles live with it because a key names
// its content: an original's key comes from its digest (model.OriginalKey),
// so only a result can be staged again with other bytes (another build's
// render), and a result is read checked against the digest its record
// names (CheckedStage). A deleted blob is either stored (save2db deletes
// it then) or read by nobody (the sweeper's orphans). Readers share the
// bytes they get and must not write to them.
type Stage interface {
	Put(ctx context.Context, key string, data []byte) error
	// Get returns ErrNotFound when the key is absent. It may read a
	// replica, which can lag: a miss moments after a Put is possible.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetLatest is Get from the authoritative copy: slower, for a miss
	// that would otherwise be taken for good.
	GetLatest(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	// Staged calls fn, oldest first, with each blob last written at least
	// age before the stage's latest write, reading none of their bytes:
	// what a sweep of blobs nobody will clear goes through. Ages are told
	// by the bus's clock, not the caller's, which may be off.
	Staged(ctx context.Context, age time.Duration, fn func(StagedBlob) error) error
	// DeleteVersion deletes key only while its last write is version (as
	// Staged gave it) and reports whether it did: a blob written again
	// since is kept.
	DeleteVersion(ctx context.Context, key, version string) (bool, error)
}

// CheckedStage is a Stage that may answer reads from memory (see Stage).
// GetChecked is Get for a blob whose SHA-256 the caller knows (a result,
// from its record): bytes held in memory that do not hash to it are read
// afresh from the authoritative copy, and returned whatever they hash to.
// Bytes read from the bus are not hashed. A Stage without the method
// always reads the bus, and Get serves.
type CheckedStage interface {
	GetChecked(ctx context.Context, key, sha256Hex string) ([]byte, error)
}

// StagedBlob is one blob of the stage, as Staged lists it.
type StagedBlob struct {
	Key     string
	Written time.Time
	// Version names this write of Key, for DeleteVersion.
	Version string
}

// StatusTable is the live state of images, shared by every instance. It is
// what the API answers from while an image moves through the pipeline.
type StatusTable interface {
	// Create stores img if no record with its id exists. It returns the
	// record now in the table and whether this call created it.
	Create(ctx context.Context, img *model.Image) (*model.Image, bool, error)
	// Get returns ErrNotFound when the id is unknown (or expired).
	Get(ctx context.Context, id string) (*model.Image, error)
	// Reopen stores img, the first record of a new run of a failed image
	// (more Retries), only in place of a failure of an earlier run, or of
	// no record: of uploads racing to retry an image, one reopens it. It
	// returns the record now in the table and whether this call wrote it.
	Reopen(ctx context.Context, img *model.Image) (*model.Image, bool, error)
	// Put replaces the record, except that a final record (done, failed)
	// is only replaced by a done one: a slow worker on a redelivered
	// message must not undo the outcome a faster one recorded. Such a Put
	// is a no-op, not an error. A failed record is also replaced by one
	// with more Retries (model.Supersedes). Attempts never go down within
	// a run (same Retries): a record keeps the higher count of the two,
	// written into img too.
	Put(ctx context.Context, img *model.Image) error
	// Watch calls fn, one call at a time, with the id of records written
	// after the watch started, until ctx ends (then it returns nil). A
	// record's last write is reported; earlier ones it replaced quickly
	// may not be. It is a hint for waiters, not a log: after a reconnect
	// some writes may go unreported, so a waiter still looks on its own
	// now and then.
	Watch(ctx context.Context, fn func(id string)) error
}

// Bus is the whole backbone.
type Bus interface {
	// Publish returns once the message is durably accepted.
	Publish(ctx context.Context, m Message) error
	// PublishAsync queues the message and returns at once; Flush waits for
	// every queued publish. For activity, where a hot path must not wait.
	// The channel receives the outcome once the bus knows it: nil when the
	// message is durably accepted, as Publish would have returned.
	PublishAsync(m Message) (<-chan error, error)
	Flush(ctx context.Context) error

	Consume(ctx context.Context, cfg ConsumerConfig, h Handler) (Consumer, error)
	// Watch streams a queue's messages to fn without a durable consumer
	// (live feeds): those published after the watch started, or with from
	// above 0, those from sequence from on, as far as the queue still
	// keeps them. fn gets each message's sequence, which a client that
	// lost the feed resumes from. It returns when ctx ends.
	Watch(ctx context.Context, q Queue, from uint64, fn func(seq uint64, data []byte)) error

	// Queued reports whether work queue q holds a message on subject that
	// no consumer has settled yet.
	Queued(ctx context.Context, q Queue, subject string) (bool, error)

	Stage() Stage
	Status() StatusTable

	// BindStore records sb as the store the bus's images are kept in,
	// unless one is recorded already, and returns the one recorded (sb,
	// or the earlier one). With replace it records sb whatever was there,
	// for an operator who moved the images to another store for good, and
	// empties the status table, whose records describe the old store's
	// images: one the new store lacks would say done and serve nothing.
	BindStore(ctx context.Context, sb StoreBinding, replace bool) (StoreBinding, error)
	// BoundStore returns the binding recorded, or ErrNotFound while none
	// is: what a process checks before it lets its store create anything.
	BoundStore(ctx context.Context) (StoreBinding, error)

	Ping(ctx context.Context) error
	Close() error
}

// StoreBinding names the store a bus's images are kept in. Processes
// sharing a bus must share the store: one given another (a typo in a
// database name) would take images off the shared queues into a store the
// others never read, and the image would be lost to them.
type StoreBinding struct {
	Store string    `json:"store"` // the store's identity (store.Store.Identity)
	Where string    `json:"where"` // where it was (store.Store.Where), for people
	By    string    `json:"by"`    // the instance that recorded it
	At    time.Time `json:"at"`
}

// ErrNotFound is returned by Stage.Get and StatusTable.Get.
var ErrNotFound = errors.New("bus: not found")

// ErrUnavailable wraps failures to reach the bus; the API turns it into 503.
var ErrUnavailable = errors.New("bus: unavailable")

// Permanent marks a handler error that retrying cannot fix.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

type permanentError struct{ error }

func (p permanentError) Unwrap() error { return p.error }

// Retry policy shared by implementations: how often and how late a failing
// message is redelivered before LastAttempt.
type Retry struct {
	// MaxDeliver bounds attempts at the work; 0 or less retries for ever.
	// A bounded message may be delivered again, Exhausted, when the last
	// attempt ended without a verdict (its worker died).
	MaxDeliver int             `mapstructure:"max_deliver"`
	Backoff    []time.Duration `mapstructure:"backoff"`
}

// Forever reports whether failures are retried without end.
func (r Retry) Forever() bool { return r.MaxDeliver <= 0 }

// RetryForever is for consumers whose failures come from an outage, not
// from the message (save2db and logger waiting for the store): giving up
// would lose what was accepted, so they wait it out, backing off to a minute.
var RetryForever = Retry{
	MaxDeliver: -1,
	Backoff:    []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute},
}

// DefaultRetry tries five times over about a minute.
var DefaultRetry = Retry{
	MaxDeliver: 5,
	Backoff:    []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second},
}
