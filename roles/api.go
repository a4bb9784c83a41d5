package roles

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/internal/loglimit"
	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/transform"
)

// API is the pipeline side of the api role: what the HTTP handlers in web/
// call. It keeps no state of its own; every answer comes from the bus's
// status table or the store, so any instance answers for any image.
type API struct {
	deps Deps
	act  activity
	// storeAway is until when uploads skip the store's duplicate check
	// (unix nanoseconds): a store that has just failed one would make
	// every upload wait its timeout (MongoDB's server selection, 5 s)
	// for an answer that is "accept anyway".
	storeAway atomic.Int64
	awayLog   loglimit.Limiter
}

// storeAwayFor is how long uploads skip the duplicate check after the
// store failed one.
const storeAwayFor = 5 * time.Second

// NewAPI builds the api role's pipeline side.
func NewAPI(d Deps) *API { return &API{deps: d, act: activity{d, "api"}} }

// ErrWatermarkMissing is returned when a spec names an image that does not
// exist. Its text starts with the parameter's name, as every refusal of a
// parameter does.
var ErrWatermarkMissing = errors.New("watermark_image: no image has this id (upload the watermark first)")

// ImageID derives the id from the original's digest and the canonical
// request, so the same bytes with the same spec land on the same record. It
// is a hash, which also spreads ids evenly over store shards.
func ImageID(originalSHA256, canonicalSpec string) string {
	h := sha256.Sum256([]byte(originalSHA256 + "\n" + canonicalSpec))
	return hex.EncodeToString(h[:16])
}

// Outcome is what Ingest did with an upload; metrics count uploads by it.
type Outcome string

const (
	Accepted  Outcome = "accepted"  // a new image, queued
	Duplicate Outcome = "duplicate" // a known image, answered as it stands
	Requeued  Outcome = "requeued"  // a known image that failed for a reason of the moment, queued for a new run
)

// Ingest takes one upload whose header has already been probed. It returns
// the record and what became of the upload. The bytes are staged, the
// transform is queued and the record is created before it returns: once it
// has returned without error, the image cannot be lost.
func (a *API) Ingest(ctx context.Context, data []byte, info model.Info, req transform.Request) (*model.Image, Outcome, error) {
	spec := req.Canonical()
	id := ImageID(info.SHA256, spec)
	// The "accepted" event has one id per image, so emitting it again is
	// harmless (the logger keeps one), and a duplicate does: the upload
	// that created the image may never have been answered, its event lost
	// with it (a crash, or the bus failing over between the write and its
	// acknowledgement), and the client's retry is this duplicate.
	// It is dated when the image was created, before it was queued: a
	// worker may start on it before this process gets to emit it, and a
	// timeline must not show the transform starting first.
	accepted := func(created time.Time) {
		a.act.emitAt(created, id, model.EventAccepted, 1, fmt.Sprintf("%s %dx%d %d bytes", info.Format, info.Width, info.Height, info.Size))
	}
	duplicate := func(created time.Time) {
		a.act.emit(id, model.EventDuplicate, 0, "")
		accepted(created)
	}
	img, err := a.lookupUpload(ctx, id)
	switch {
	case err == nil && img.Status == model.StatusFailed && RetryableFailure(img.ErrorCode):
		return a.requeue(ctx, data, img)
	case err == nil:
		duplicate(img.CreatedAt)
		return img, Duplicate, nil
	case errors.Is(err, store.ErrUnavailable):
		// The status table does not know the id and the store cannot say:
		// accept anyway. The id is derived from the content, so at worst a
		// known image is transformed again into the same record, and
		// save2db waits for the store to come back.
		if ok, suppressed := a.awayLog.Allow(); ok {
			a.deps.Log.Warn("store unreachable, accepting without the duplicate check", "image", id, "err", err, "suppressed", suppressed)
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, "", err
	}
	for _, wm := range req.WatermarkIDs() {
		if _, err := a.Lookup(ctx, wm); errors.Is(err, store.ErrNotFound) {
			return nil, "", fmt.Errorf("%w: %s", ErrWatermarkMissing, wm)
		} else if err != nil {
			return nil, "", err
		}
	}

	now := time.Now().UTC()
	img = &model.Image{ID: id, Status: model.StatusQueued, Spec: spec, Original: info, CreatedAt: now, UpdatedAt: now}
	// Queue first, then create the record: if the create fails the work is
	// still queued and the transformer writes the record itself, so a client
	// that retries finds the image instead of a record with no work behind it.
	if err := a.enqueue(ctx, img, data); err != nil {
		return nil, "", err
	}
	cur, created, err := a.deps.Bus.Status().Create(ctx, img)
	if err != nil {
		return nil, "", err
	}
	// A fast transformer may have written the record from our message
	// before Create ran: it is still this upload's record, not a duplicate.
	if created || cur.CreatedAt.Equal(img.CreatedAt) {
		accepted(img.CreatedAt)
		return cur, Accepted, nil
	}
	duplicate(cur.CreatedAt)
	return cur, Duplicate, nil
}

// enqueue stages the original of img, a run's first record, queues its
// transform and hands the record to save2db. The transform message's id
// names the run, so uploads racing to start one queue it once.
func (a *API) enqueue(ctx context.Context, img *model.Image, original []byte) error {
	if err := a.deps.Bus.Stage().Put(ctx, model.OriginalKey(img.ID), original); err != nil {
		return err
	}
	msg, err := json.Marshal(img)
	if err != nil {
		return err
	}
	id := "transform." + img.ID
	if img.Retries > 0 {
		id += ".r" + strconv.Itoa(img.Retries)
	}
	if err := a.deps.Bus.Publish(ctx, bus.Message{Queue: bus.Transform, Subject: img.ID, ID: id, Data: msg}); err != nil {
		return err
	}
	return PublishAccepted(ctx, a.deps.Bus, img)
}

// RetryableFailure tells the failure codes a new run may cure: they come
// from the machine at the time (a render that ran out of time on a busy
// machine, workers stopped, a cancelled render, an unexpected error), not
// from the image or its spec, which fail the same way every time.
func RetryableFailure(code string) bool {
	// A record without a code (an older version's) is served as
	// transform_failed, and is that.
	switch cmp.Or(code, CodeTransformFailed) {
	case transform.CodeTimeout, transform.CodeCanceled, transform.CodeInternal, codeWorkersStopped, CodeTransformFailed:
		return true
	}
	return false
}

// requeue queues again an image that failed for a cause a new run may
// cure: uploading it again is how a client retries it. The new run has one
// more Retries; its records replace the failure (model.Supersedes) and its
// attempts count from 1. The bytes are staged again (the failure's save
// took them off the stage), and the work is queued before the record
// changes: a transformer that finds the failure still recorded goes by the
// message's run. Concurrent uploads of it queue one run: the message id
// names the run, and the record is reopened once (Reopen).
func (a *API) requeue(ctx context.Context, data []byte, cur *model.Image) (*model.Image, Outcome, error) {
	now := time.Now().UTC()
	img := &model.Image{ID: cur.ID, Status: model.StatusQueued, Spec: cur.Spec, Original: cur.Original,
		Retries: cur.Retries + 1, CreatedAt: cur.CreatedAt, UpdatedAt: now}
	if err := a.enqueue(ctx, img, data); err != nil {
		return nil, "", err
	}
	// Of uploads racing to retry the image, one reopens it; the others
	// answer the record as it now is (their publishes were deduplicated).
	// A worker may have taken the run up before any did.
	rec, reopened, err := a.deps.Bus.Status().Reopen(ctx, img)
	if err != nil {
		return nil, "", err
	}
	if !reopened && rec.Retries != img.Retries {
		return rec, Duplicate, nil // a later run still
	}
	// Dated before the work was queued, as "accepted" is: a worker's
	// first event must not come before it in the timeline.
	// Emitted by every upload of the run: one event id, kept once.
	a.act.emitKeyed(now, img.ID, model.EventRequeued, "r"+strconv.Itoa(img.Retries), fmt.Sprintf("after %s: %s", cur.ErrorCode, cur.Error))
	return rec, Requeued, nil
}

// AwaitActivity returns once the activity emitted so far in this process
// is stored, or ctx ends: an upload is answered only when its "accepted"
// event is safe from a crash. One wait per request, not per file: it covers
// every event emitted before it, whatever batch each went in. The wait is
// bounded: with the bus gone right after the upload was queued, the image
// itself is safe, and answering matters more than its first event.
func (a *API) AwaitActivity(ctx context.Context) {
	timer := time.NewTimer(awaitActivityMax)
	defer timer.Stop()
	select {
	case <-a.deps.Activity.Stored():
	case <-ctx.Done():
	case <-timer.C:
		a.deps.Log.Warn("upload answered before its activity was stored", "waited", awaitActivityMax)
	}
}

// awaitActivityMax bounds AwaitActivity; a stored batch takes milliseconds.
const awaitActivityMax = 5 * time.Second

// idShape is what ImageID gives: 32 lowercase hex digits.
var idShape = regexp.MustCompile(`^[0-9a-f]{32}$`)

// lookupUpload is Lookup for an upload's duplicate check, which skips the
// store for storeAwayFor after it failed one (see API.storeAway).
func (a *API) lookupUpload(ctx context.Context, id string) (*model.Image, error) {
	if time.Now().UnixNano() < a.storeAway.Load() {
		img, err := a.deps.Bus.Status().Get(ctx, id)
		if errors.Is(err, bus.ErrNotFound) {
			err = fmt.Errorf("%w: it failed a moment ago", store.ErrUnavailable)
		}
		return img, err
	}
	img, err := a.Lookup(ctx, id)
	if errors.Is(err, store.ErrUnavailable) {
		a.storeAway.Store(time.Now().Add(storeAwayFor).UnixNano())
	}
	return img, err
}

// Lookup returns the live record from the status table, or the stored one
// when the table no longer has it. Unknown ids give store.ErrNotFound, and
// so do ids no upload could have (a client's typo, an empty path segment):
// those are not asked of the bus, which refuses them as malformed keys.
func (a *API) Lookup(ctx context.Context, id string) (*model.Image, error) {
	if !idShape.MatchString(id) {
		return nil, fmt.Errorf("%w: %q is not an image id", store.ErrNotFound, id)
	}
	img, err := a.deps.Bus.Status().Get(ctx, id)
	if err == nil {
		return img, nil
	}
	busErr := err
	img, err = a.deps.Store.GetImage(ctx, id)
	if err == nil {
		return img, nil
	}
	if errors.Is(err, store.ErrNotFound) && !errors.Is(busErr, bus.ErrNotFound) {
		// The table could not answer and the store has nothing: the image
		// may exist but be unreachable, which is not a 404.
		return nil, unreachable(busErr)
	}
	return nil, storeErr(err)
}

// unreachable marks a bus read that failed, where the store could not make
// up for it, as an outage whatever the bus's reason: a leader changing, a
// reply lost with its connection, a direct get answered with a status the
// client passes on as plain text, a record a newer version wrote during a
// rolling upgrade. The answer is "not now", a 503
// with Retry-After, rather than a 500; the cause stays in the chain (and
// the log), and a client that hung up still reads as one.
func unreachable(err error) error {
	if err == nil || errors.Is(err, bus.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", bus.ErrUnavailable, err)
}

// storeErr marks a store failure other than "not found" as an outage.
func storeErr(err error) error {
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrBadCursor) {
		return err
	}
	return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
}

// Blob returns the bytes under key from the stage or the store. digest,
// when given, is the SHA-256 in hex the record names: a result's staged
// bytes are checked against it (see stagedAs).
func (a *API) Blob(ctx context.Context, key, digest string) ([]byte, error) {
	b, err := stagedAs(ctx, a.deps.Bus, key, digest)
	if err == nil {
		return b, nil
	}
	b, serr := a.deps.Store.GetBlob(ctx, key)
	if serr == nil {
		return b, nil
	}
	if !errors.Is(serr, store.ErrNotFound) {
		return nil, storeErr(serr)
	}
	// Before a 404, the stage's authoritative copy: the first read may
	// have met a lagging replica, or failed, for a blob not yet stored.
	b, err = a.deps.Bus.Stage().GetLatest(ctx, key)
	if errors.Is(err, bus.ErrNotFound) {
		return nil, store.ErrNotFound
	}
	return b, unreachable(err)
}

// List pages through stored records, newest first.
//
// The store learns an image's state when it is accepted and when it ends;
// in between it holds it as queued, and the status table knows whether it
// is still queued or being processed. So a stored record not yet final is
// shown as the status table has it, and the status filter applies to that
// live state: queued and processing are both looked for among the stored
// queued ones. A page may then hold fewer than the limit; its cursor goes
// on from where the store's page ended.
func (a *API) List(ctx context.Context, q store.ListQuery) (store.Page, error) {
	sq := q
	if q.Status == model.StatusProcessing {
		sq.Status = model.StatusQueued
	}
	p, err := a.deps.Store.ListImages(ctx, sq)
	if err != nil {
		return p, storeErr(err)
	}
	out := p.Images[:0]
	live := true // until the status table fails to answer: one slow read, not one per record
	for _, img := range p.Images {
		if live && !img.Status.Final() {
			cur, err := a.deps.Bus.Status().Get(ctx, img.ID)
			switch {
			case err == nil && cur.Status.Final() && cur.Retries >= img.Retries:
				// Ended, but not yet stored by save2db: shown as it
				// ended (it read as stuck in the queue while save2db
				// lagged), so a queued filter leaves it out; a done or
				// failed filter, which asks the store, finds it once
				// stored.
				img = *cur
			case err == nil && !cur.Status.Final():
				img.Status = cur.Status
			case err != nil && !errors.Is(err, bus.ErrNotFound):
				live = false
			}
		}
		if q.Status == "" || img.Status == q.Status {
			out = append(out, img)
		}
	}
	p.Images = out
	return p, nil
}

// Activity returns the logger's records for one image, oldest first.
func (a *API) Activity(ctx context.Context, id string) ([]model.Event, error) {
	ev, err := a.deps.Store.ImageEvents(ctx, id)
	return ev, storeErr(err)
}

// Recent returns the newest events across all images: the logger's global
// feed.
func (a *API) Recent(ctx context.Context, limit int) ([]model.Event, error) {
	ev, err := a.deps.Store.RecentEvents(ctx, limit)
	return ev, storeErr(err)
}

// FeedPosition is an event's place in the live feed: the sequence of its
// batch in the activity queue, and its index in the batch. Its text form,
// "seq.index", is what a client that lost the feed gives back to resume.
type FeedPosition struct {
	Seq   uint64
	Index int
}

func (p FeedPosition) String() string {
	return strconv.FormatUint(p.Seq, 10) + "." + strconv.Itoa(p.Index)
}

// ParseFeedPosition reads a FeedPosition's text form.
func ParseFeedPosition(s string) (FeedPosition, error) {
	seq, index, ok := strings.Cut(s, ".")
	n, err1 := strconv.ParseUint(seq, 10, 64)
	i, err2 := strconv.Atoi(index)
	if !ok || err1 != nil || err2 != nil || n == 0 || i < 0 {
		return FeedPosition{}, fmt.Errorf("%q is not a feed position: want the id of an event the feed sent, such as 1234.0", s)
	}
	return FeedPosition{n, i}, nil
}

// Watch streams live activity to fn, one event (as JSON) per call, with
// its position, until ctx ends: the events after after, as far as the
// activity queue still keeps them (nats.activity_max_age), or with a zero
// after, those from now on.
func (a *API) Watch(ctx context.Context, after FeedPosition, fn func(FeedPosition, []byte)) error {
	return a.deps.Bus.Watch(ctx, bus.Activity, after.Seq, func(seq uint64, data []byte) {
		_, raw, err := DecodeActivity(data)
		if err != nil {
			a.deps.Log.Debug("malformed activity message on the live feed", "err", err)
			return
		}
		for i, r := range raw {
			if seq == after.Seq && i <= after.Index {
				continue // sent before the client lost the feed
			}
			fn(FeedPosition{seq, i}, r)
		}
	})
}

// WatchStatus calls fn with the id of every image whose live record is
// written from now on, until ctx ends (see bus.StatusTable.Watch).
func (a *API) WatchStatus(ctx context.Context, fn func(id string)) error {
	return a.deps.Bus.Status().Watch(ctx, fn)
}

// Engine exposes the spec parser and prober to the HTTP layer.
func (a *API) Engine() *transform.Engine { return a.deps.Engine }
