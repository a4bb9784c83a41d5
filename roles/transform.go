package roles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/transform"
)

// transformer is the transform role: it takes uploads off the transform
// queue, renders every variant with libvips, stages the results, marks the
// image done in the status table (what the API serves) and hands the record
// to save2db. Failures are retried with the bus's bounded policy; the last
// attempt records the image as failed, and so does the exhausted delivery
// that follows a last attempt whose worker died. An outage of the bus is
// waited out instead, not counted (see outlast).
type transformer struct {
	deps Deps
	act  activity
	// stopping is closed when the role starts draining: workers waiting
	// out an outage hand their image back then, rather than hold the
	// drain until its deadline.
	stopping chan struct{}
	stopOnce sync.Once
}

// NewTransformer runs workers transforms at once.
func NewTransformer(d Deps, workers int) Service {
	t := &transformer{deps: d, act: activity{d, "transform"}, stopping: make(chan struct{})}
	return &consumerRole{name: "transform", b: d.Bus, handle: t.handle,
		cfg:      bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: workers, AckWait: redeliverAfter, NoPrefetch: true},
		act:      d.Activity,
		stopping: func() { t.stopOnce.Do(func() { close(t.stopping) }) }}
}

// The transform consumer does not fetch ahead of its workers (NoPrefetch):
// a delivery waiting for a worker gets no heartbeat, and behind renders
// that take most of transform.timeout it would outwait redeliverAfter and
// go to a second worker, its attempts counted twice. Nor would an image
// wait behind this process's long renders while another process has a
// free worker. A render takes milliseconds to seconds; asking for each
// delivery adds a round trip to the bus, which the other workers cover.

// handle is idempotent: a redelivery of an image already done or failed
// republishes its record for save2db and its outcome event (the process
// that reached the outcome may have died before either left) and stops.
func (t *transformer) handle(ctx context.Context, d bus.Delivery) error {
	var img model.Image
	if err := json.Unmarshal(d.Data(), &img); err != nil || img.ID == "" {
		t.deps.Metrics.Handled.WithLabelValues("transform", "malformed").Inc()
		return bus.Permanent(fmt.Errorf("malformed transform message: %v", err))
	}
	// The record decides what this delivery is: read it through an
	// outage, since unread it counts as an attempt that began.
	var cur *model.Image
	err := t.outlast(ctx, d, func() (err error) { cur, err = t.deps.Bus.Status().Get(ctx, img.ID); return err })
	if err != nil && (ctx.Err() != nil || closedNow(t.handBack(d))) {
		return err // a shutdown during an outage: unread, nothing to decide
	}
	if err == nil && cur.Retries > img.Retries {
		// A message of an earlier run, redelivered: the image was queued
		// again since, and the new run owns it.
		t.deps.Metrics.Handled.WithLabelValues("transform", "superseded").Inc()
		return nil
	}
	if err == nil && cur.Status.Final() && !model.Supersedes(&img, cur) {
		return t.resave(ctx, d, cur)
	}
	if d.Exhausted() && (d.Final() || lastAttemptBegan(d, &img, cur, err)) {
		// The last attempt ended without a verdict: the worker holding it
		// died or hung. Rendering again could kill this one too, so the
		// image is recorded failed without touching the engine.
		img.Attempts = d.Attempt() - 1
		if err == nil && cur.Attempts > 0 && cur.Retries == img.Retries {
			// The last attempt that began, as it wrote itself: a verdict
			// delivery whose worker died also counts as a delivery.
			img.Attempts = cur.Attempts
		}
		cause := fmt.Errorf("attempts exhausted: no verdict after %d deliveries", d.Attempt()-1)
		return t.fail(ctx, d, &img, cause, msgWorkersStopped, codeWorkersStopped)
	}
	// An exhausted delivery whose last attempt never began goes on as that
	// attempt (not the final one: if its worker died too, nothing would
	// record the outcome), and its outcome is the verdict.

	img.Status, img.Attempts, img.UpdatedAt = model.StatusProcessing, d.Attempt(), time.Now().UTC()
	if err := t.outlast(ctx, d, func() error { return t.deps.Bus.Status().Put(ctx, &img) }); err != nil {
		if !d.LastAttempt() || ctx.Err() != nil {
			return err // a shutdown hands the image back rather than render it for nothing
		}
		// The last attempt goes on without it. Unwritten, this attempt
		// does not count as begun (lastAttemptBegan): if it kills its
		// worker, the next delivery tries once more, unless it is the
		// final one.
		t.deps.Log.Warn("status not updated", "image", img.ID, "err", err)
	}
	t.act.emitRun(&img, model.EventTransformStarted, d.Attempt(), "")

	results, err := t.render(ctx, &img, d)
	if err != nil {
		if !bus.IsPermanent(err) && !d.LastAttempt() {
			t.deps.Metrics.Handled.WithLabelValues("transform", "retry").Inc()
			t.act.emitRun(&img, model.EventTransformRetry, d.Attempt(), publicMessage(err))
			return err
		}
		return t.fail(ctx, d, &img, err, publicMessage(err), publicCode(err))
	}
	img.Status, img.Results, img.Error = model.StatusDone, results, ""
	t.emitOutcome(&img)
	t.deps.Metrics.Handled.WithLabelValues("transform", "done").Inc()
	return t.record(ctx, d, &img)
}

// emitOutcome records the final outcome of img under the attempt the
// record names: emitted again from the record on a redelivery, it has the
// same event id, and the logger keeps one.
func (t *transformer) emitOutcome(img *model.Image) {
	if img.Status == model.StatusDone {
		t.act.emitRun(img, model.EventTransformDone, img.Attempts, fmt.Sprintf("%d variant(s)", len(img.Results)))
	} else {
		t.act.emitRun(img, model.EventTransformFailed, img.Attempts, img.Error)
	}
}

// lastAttemptBegan tells whether the last attempt of an exhausted delivery
// d of img began, from the image's status record cur (or the error reading it):
// every attempt writes "processing" with its number before it renders. One
// that never did was lost before it began (a process that died right after
// fetching it, one of an older version that fetched ahead, a delivery lost
// in flight), which counts as a delivery too: an innocent image would
// otherwise be failed after crashes that a poison image beside it caused,
// without a single real attempt of its own. When the record cannot be read, the
// answer is yes: the cautious one.
func lastAttemptBegan(d bus.Delivery, img, cur *model.Image, err error) bool {
	switch {
	case errors.Is(err, bus.ErrNotFound):
		return false
	case err != nil:
		return true
	case cur.Retries < img.Retries:
		return false // the record is still the earlier run's: none of this one's began
	}
	return cur.Attempts >= d.MaxAttempts()
}

// msgWorkersStopped and codeWorkersStopped are the public error of an
// image whose last attempt ended without a verdict (bus.Delivery.Exhausted).
const (
	msgWorkersStopped  = "processing did not complete: the worker handling this image's last attempt stopped (crash or timeout) without an answer"
	codeWorkersStopped = "workers_stopped"
)

// fail records img as failed for good with the public message msg and
// code (cause goes to the log only), unless another worker, on a
// redelivery, finished it meanwhile.
func (t *transformer) fail(ctx context.Context, d bus.Delivery, img *model.Image, cause error, msg, code string) error {
	if cur, err := t.deps.Bus.Status().Get(ctx, img.ID); err == nil && cur.Status == model.StatusDone {
		return t.resave(ctx, d, cur)
	}
	t.deps.Log.Warn("transform failed", "image", img.ID, "attempt", d.Attempt(), "err", cause)
	img.Status, img.Error, img.ErrorCode = model.StatusFailed, msg, code
	t.emitOutcome(img)
	t.deps.Metrics.Handled.WithLabelValues("transform", "failed").Inc()
	return t.record(ctx, d, img)
}

// record writes the outcome in img. The status record goes first: once it
// says done, a crash before the save publish is repaired by a redelivery
// (the check at the top of handle).
func (t *transformer) record(ctx context.Context, d bus.Delivery, img *model.Image) error {
	img.UpdatedAt = time.Now().UTC()
	return t.untilDone(ctx, d, func() error {
		if err := t.deps.Bus.Status().Put(ctx, img); err != nil {
			return err
		}
		return publishSave(ctx, t.deps.Bus, img)
	})
}

// resave hands an already final record to save2db again, and its outcome
// event to the logger (either may have been lost). On the last attempt it
// is the image's only chance, so it goes through untilDone like any
// outcome.
func (t *transformer) resave(ctx context.Context, d bus.Delivery, img *model.Image) error {
	t.emitOutcome(img)
	return t.untilDone(ctx, d, func() error { return publishSave(ctx, t.deps.Bus, img) })
}

// untilDone runs the bookkeeping that records an outcome. Before the last
// attempt a failure is left to the bus's redelivery, unless the bus is
// unavailable (see outlast); on the last attempt (or an exhausted
// delivery) there is no redelivery, and giving up would strand an image
// whose outcome is known, so it retries (holding the message) until it
// succeeds or ctx ends.
func (t *transformer) untilDone(ctx context.Context, d bus.Delivery, write func() error) error {
	return t.retrying(ctx, d, write, func(err error) bool { return d.LastAttempt() || outage(err) })
}

// outlast runs one bus operation of an attempt, and runs it again, holding
// the delivery, for as long as it fails because the bus is unavailable (a
// full disk, a lost connection, an election) or the store it falls back on
// is, or until ctx ends. An outage
// is not the image's fault: returned, each failure would spend one of its
// attempts, and an outage longer than the retry policy (about a minute)
// would fail every image a worker took meanwhile. Waiting holds one image
// per worker; the rest wait in the stream, their attempts untouched.
func (t *transformer) outlast(ctx context.Context, d bus.Delivery, op func() error) error {
	return t.retrying(ctx, d, op, outage)
}

// outage tells a failure to reach the bus, or the store (which the
// transformer reads an original from once save2db has taken it off the
// stage).
func outage(err error) bool {
	return errors.Is(err, bus.ErrUnavailable) || errors.Is(err, store.ErrUnavailable)
}

// handBack is closed once a drain has begun and d, held through an
// outage, is to go back rather than on. A drain hands back an image held
// before its last attempt; on the last, there is no next attempt to hand
// it to (nil: never), and it is held until the drain's deadline cancels
// ctx.
func (t *transformer) handBack(d bus.Delivery) <-chan struct{} {
	if d.LastAttempt() {
		return nil
	}
	return t.stopping
}

func closedNow(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// retrying runs op until it succeeds, fails in a way again does not
// accept, or ctx ends, backing off from 100 ms to 5 s and keeping the
// delivery alive meanwhile. A wait for an outage is logged when it begins
// and ends, and counted while it lasts (imgpipe_transform_outage_waits).
func (t *transformer) retrying(ctx context.Context, d bus.Delivery, op func() error, again func(error) bool) error {
	delay := 100 * time.Millisecond
	var since time.Time // of the outage being waited out
	defer func() {
		if !since.IsZero() {
			t.deps.Metrics.OutageWaits.Dec()
		}
	}()
	for {
		err := op()
		if err == nil || ctx.Err() != nil || !again(err) {
			if err == nil && !since.IsZero() {
				t.deps.Log.Info("the outage is over", "waited", time.Since(since).Round(time.Millisecond))
			}
			return err
		}
		if since.IsZero() && outage(err) {
			since = time.Now()
			t.deps.Metrics.OutageWaits.Inc()
			t.deps.Log.Warn("holding an image through an outage", "err", err)
		}
		d.InProgress()
		select {
		case <-ctx.Done():
			return err
		case <-t.handBack(d):
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// render produces and stages every variant of img.
func (t *transformer) render(ctx context.Context, img *model.Image, d bus.Delivery) ([]model.Result, error) {
	req, err := transform.ParseCanonical(img.Spec)
	if err != nil {
		return nil, bus.Permanent(err)
	}
	var original []byte
	err = t.outlast(ctx, d, func() (err error) { original, err = fetchBlob(ctx, t.deps, model.OriginalKey(img.ID)); return err })
	if err != nil {
		return nil, fmt.Errorf("original: %w", err)
	}
	marks := map[string][]byte{}
	for _, id := range req.WatermarkIDs() {
		err = t.outlast(ctx, d, func() (err error) { marks[id], err = fetchBlob(ctx, t.deps, model.OriginalKey(id)); return err })
		if err != nil {
			return nil, fmt.Errorf("watermark image %s: %w", id, err)
		}
	}
	results := make([]model.Result, 0, len(req.Variants))
	for _, v := range req.Variants {
		d.InProgress()
		start := time.Now()
		out, info, err := t.deps.Engine.Process(ctx, transform.Input{Data: original, Spec: v.Spec, Watermarks: marks})
		if err != nil {
			var te *transform.Error
			if errors.As(err, &te) && (te.Permanent() || te.Code == transform.CodeTimeout && d.Attempt() >= timeoutAttempts) {
				return nil, bus.Permanent(err)
			}
			return nil, err
		}
		t.deps.Metrics.Transform.WithLabelValues(info.Format).Observe(time.Since(start).Seconds())
		if err := t.outlast(ctx, d, func() error { return t.deps.Bus.Stage().Put(ctx, model.ResultKey(img.ID, v.Name), out) }); err != nil {
			return nil, err
		}
		results = append(results, model.Result{Variant: v.Name, Spec: v.Spec.Canonical(), Info: info})
	}
	return results, nil
}

// timeoutAttempts is the attempt from which running out of
// transform.timeout fails the image. The first may have met a machine too
// busy to give the render its share; a second rarely does better, and each
// costs a worker the whole timeout: an upload that no worker can render in
// time would otherwise take Retry.MaxDeliver of them. Attempts are counted
// whatever ended the earlier ones (a crash, a shutdown): keeping a count
// of timeouts alone would need one more field in every status record.
const timeoutAttempts = 2

// fetchBlob reads a blob from staging, or from the store once save2db has
// persisted it and cleared the stage.
func fetchBlob(ctx context.Context, d Deps, key string) ([]byte, error) {
	b, err := d.Bus.Stage().Get(ctx, key)
	if errors.Is(err, bus.ErrNotFound) {
		b, err = d.Store.GetBlob(ctx, key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			b, err = latest(ctx, d.Bus, key)
		case err != nil:
			// The store is down or slow, not the image at fault: an
			// outage, which the caller waits out.
			err = storeErr(err)
		}
	}
	return b, err
}

// latest is the last look before a blob is declared lost: the stage's
// authoritative copy, in case the first read met a lagging replica.
func latest(ctx context.Context, b bus.Bus, key string) ([]byte, error) {
	data, err := b.Stage().GetLatest(ctx, key)
	if errors.Is(err, bus.ErrNotFound) {
		return nil, bus.Permanent(fmt.Errorf("%s is neither staged nor stored", key))
	}
	return data, err
}

// publicCode is publicMessage's code: the engine's, or a generic one.
func publicCode(err error) string {
	var te *transform.Error
	if errors.As(err, &te) {
		return te.Code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return transform.CodeTimeout
	}
	return CodeTransformFailed
}

// CodeTransformFailed is the code of a failure the engine did not name.
const CodeTransformFailed = "transform_failed"

// publicMessage is what a client may read about a failure: the engine's
// public text, never C or network internals.
func publicMessage(err error) string {
	var te *transform.Error
	if errors.As(err, &te) {
		return te.Message
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "processing timed out"
	}
	return "processing failed"
}
