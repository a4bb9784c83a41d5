package roles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nuid"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/internal/loglimit"
	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
)

// Activity batching. Every image makes about five events; one message each
// cost the bus a store, a delivery and an ack, and the logger a store write,
// per event: about a tenth of the CPU of a small image, measured by turning
// events off in make bench. Events are packed instead,
// a batch leaving when it holds activityBatchMax events or activityLinger
// after its first event. The linger is what makes batches form at all (a
// publish round trip is far shorter than the gap between events), and it is
// short enough not to be seen on a live feed.
const (
	activityLinger   = 10 * time.Millisecond
	activityBatchMax = 256
)

// Activity publishes the events of every role in the process, in batches: a
// message on the activity queue is a JSON array of model.Event. Publishing
// is asynchronous, so an event costs its emitter a lock and an append; only
// when the bus's window of unacknowledged publishes is full does an emitter
// wait (up to the bus's limit, 200 ms) rather than pile events up.
//
// A crash loses no event: Stored tells when what was emitted so far is
// stored, and the roles hold what depends on it until then (the ack of the
// message whose handling the events describe, the answer to an upload).
// A batch the bus refuses or loses (a failover, a reconnect) is published
// again; one it refuses for activityRetryFor (or once the process's
// shutdown began, see Hurry) is written straight into the store, as the
// logger would have kept it: timelines have it, only live feeds miss it.
// It is dropped (logged) only when the store refuses it too, or refused
// another in the last keepAwayFor. The work it describes is not held back
// that long (see SettleAfter).
//
// It is a service, added first so that it stops last: Stop publishes what
// is pending after every role has drained and waits, within its deadline,
// until every batch is settled (stored by the bus, or kept in the store,
// which the process closes after); events emitted after Stop (by a handler
// a hard shutdown left running) go out at once.
type Activity struct {
	b     bus.Bus
	st    store.Store // where a batch the bus keeps refusing goes; nil: dropped
	log   *slog.Logger
	batch string // unique prefix of this process's batch ids

	linger    time.Duration // activityLinger; tests lengthen it
	retryFor  time.Duration // activityRetryFor; tests shorten it
	keptLog   loglimit.Limiter
	storeAway atomic.Int64  // unix nanos until which keep does not try the store
	hurry     chan struct{} // closed once shutdown begins (Hurry) or by Stop
	hurryOnce sync.Once

	mu      sync.Mutex // orders batches and guards what follows
	pending []model.Event
	stored  chan struct{} // closed once pending is stored; made with its first event
	last    chan struct{} // the last batch published: closed once it and all before it are settled
	timer   *time.Timer
	seq     uint64
	stopped bool
}

// closed is a channel that is ready at once.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Stored returns a channel closed once every event emitted so far has been
// stored by the bus: a linger and a publish round trip away, longer while
// the bus is in trouble, up to activityRetryFor, after which a batch still
// refused is written into the store instead.
func (a *Activity) Stored() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case len(a.pending) > 0:
		return a.stored
	case a.last != nil:
		return a.last
	}
	return closed
}

// NewActivity publishes on b, and keeps in st what b keeps refusing; log
// reports those batches.
func NewActivity(b bus.Bus, st store.Store, log *slog.Logger) *Activity {
	return &Activity{b: b, st: st, log: log, batch: nuid.Next(), linger: activityLinger, retryFor: activityRetryFor,
		hurry: make(chan struct{})}
}

func (a *Activity) Name() string                { return "activity" }
func (a *Activity) Start(context.Context) error { return nil }

// Hurry has the batches in trouble give up on the bus once stopping is
// closed (the process's shutdown beginning): a publish unanswered after
// stopGrace, or refused, is kept in the store at once. The roles' drain
// waits for their events (see SettleAfter), and would otherwise wait for
// the bus's ack timeout, or activityRetryFor, well past its deadline.
func (a *Activity) Hurry(stopping <-chan struct{}) {
	go func() {
		<-stopping
		a.hurryOnce.Do(func() { close(a.hurry) })
	}()
}

// Stop publishes the pending batch, and waits until it and every batch
// before it are settled, or ctx ends; from then on events are not held.
func (a *Activity) Stop(ctx context.Context) error {
	a.hurryOnce.Do(func() { close(a.hurry) })
	a.mu.Lock()
	a.stopped = true
	a.publishLocked()
	last := a.last
	a.mu.Unlock()
	if last == nil || closedNow(last) {
		return nil // settled, whatever is left of ctx
	}
	select {
	case <-last:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("activity: batches still unsettled at the deadline: %w", ctx.Err())
	}
}

// Emit queues ev for the next batch.
func (a *Activity) Emit(ev model.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending = append(a.pending, ev)
	if len(a.pending) == 1 {
		a.stored = make(chan struct{})
	}
	switch {
	case a.stopped || len(a.pending) >= activityBatchMax:
		a.publishLocked()
	case len(a.pending) == 1:
		a.timer = time.AfterFunc(a.linger, a.Flush)
	}
}

// Flush publishes the pending batch now.
func (a *Activity) Flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.publishLocked()
}

// publishLocked sends the pending events as one message. It runs under the
// lock so that batches leave in the order their events were emitted (the
// publish itself returns at once unless the bus's async window is full).
func (a *Activity) publishLocked() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	if len(a.pending) == 0 {
		return
	}
	events, stored, prev := a.pending, a.stored, a.last
	a.pending, a.stored, a.last = nil, nil, stored
	a.seq++
	data, _ := json.Marshal(events) // plain structs: cannot fail
	m := bus.Message{Queue: bus.Activity, Subject: "batch", ID: fmt.Sprintf("%s.%d", a.batch, a.seq), Data: data}
	formed := time.Now()
	outcome, err := a.b.PublishAsync(m)
	// Batches are settled in order, so that waiting for the last one is
	// waiting for all; one the bus did not store is published again after
	// the ones before it have settled, so that one batch at a time retries.
	go func() {
		if err == nil {
			err = a.await(outcome)
		}
		if prev != nil {
			<-prev
		}
		if err != nil {
			a.republish(m, formed, events, err)
		}
		close(stored)
	}()
}

// stopGrace is how long, once shutdown began, a publish is given to be
// acknowledged before its batch is kept in the store instead: a bus that
// is away would otherwise hold the shutdown for its ack timeout (30 s).
const stopGrace = time.Second

// await returns a publish's outcome, or an error stopGrace after shutdown
// began.
func (a *Activity) await(outcome <-chan error) error {
	select {
	case err := <-outcome:
		return err
	case <-a.hurry:
	}
	select {
	case err := <-outcome:
		return err
	case <-time.After(stopGrace):
		return errors.New("not acknowledged within a second of the shutdown's start")
	}
}

// activityRetryFor bounds the republishing of a batch the bus refused or
// lost (a server failing over, a reconnect), counted from when the batch
// formed: within the stream's duplicate window, so that a batch stored
// after all is not stored twice, and short enough that an outage holds
// at most that long's worth of batches in memory.
const activityRetryFor = time.Minute

// republish publishes m, the batch of events, again until the bus stores
// it; activityRetryFor after it formed, or once shutdown began, it is kept
// in the store instead. What is held for it (acks, answers) waits
// meanwhile, within its own bounds.
func (a *Activity) republish(m bus.Message, formed time.Time, events []model.Event, err error) {
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		if time.Since(formed) > a.retryFor || closedNow(a.hurry) {
			a.keep(events, err)
			return
		}
		select {
		case <-time.After(delay):
		case <-a.hurry:
			continue
		}
		var outcome <-chan error
		if outcome, err = a.b.PublishAsync(m); err == nil {
			if err = a.await(outcome); err == nil {
				return
			}
		}
	}
}

// Bounds of keep. The batches behind one wait for its store write: it is
// given keepTimeout, and after one fails the store is not tried for
// keepAwayFor, so that in an outage of both the bus and the store batches
// are dropped as fast as they form rather than pile up behind the writes.
const (
	keepTimeout = 2 * time.Second
	keepAwayFor = 5 * time.Second
)

// keep writes a batch the bus would not take straight into the store, as
// the logger would have (the store skips event ids it has, so a batch the
// bus stored after all is not kept twice). During a long outage that is a
// batch every linger: a line a second is logged.
func (a *Activity) keep(events []model.Event, busErr error) {
	storeErr := errors.New("no store")
	switch {
	case a.st == nil:
	case time.Now().UnixNano() < a.storeAway.Load():
		storeErr = errors.New("the store failed a moment ago")
	default:
		ctx, cancel := context.WithTimeout(context.Background(), keepTimeout)
		if storeErr = a.st.AppendEvents(ctx, events...); storeErr != nil {
			a.storeAway.Store(time.Now().Add(keepAwayFor).UnixNano())
		}
		cancel()
	}
	ok, suppressed := a.keptLog.Allow()
	switch {
	case !ok:
	case storeErr == nil:
		a.log.Warn("activity kept in the store without the bus: live feeds miss it", "events", len(events),
			"first_image", events[0].ImageID, "bus_err", busErr, "suppressed", suppressed)
	default:
		a.log.Warn("activity not kept: the bus and the store refused it", "events", len(events),
			"first_image", events[0].ImageID, "bus_err", busErr, "store_err", storeErr, "suppressed", suppressed)
	}
}

// DecodeActivity reads one activity message: a batch, or a single event as
// published before batching (still in a stream after an upgrade). Each
// element is returned raw as well, for feeds that pass events through.
func DecodeActivity(data []byte) ([]model.Event, []json.RawMessage, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		raw = []json.RawMessage{data}
	}
	events := make([]model.Event, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &events[i]); err != nil {
			return nil, nil, err
		}
		if events[i].ID == "" {
			return nil, nil, fmt.Errorf("event %d has no id", i)
		}
	}
	return events, raw, nil
}

// activity is one role's view of the process's Activity.
type activity struct {
	deps Deps
	role string
}

// emit records that this role did event to image id. attempt makes the event
// id stable across redeliveries of the same attempt (the logger keeps one);
// attempt 0 means the event is unique each time (a duplicate upload).
func (a activity) emit(id, event string, attempt int, detail string) {
	a.emitAt(time.Now(), id, event, attempt, detail)
}

// emitAt is emit for an event that happened at a time of its own.
func (a activity) emitAt(at time.Time, id, event string, attempt int, detail string) {
	key := ""
	if attempt > 0 {
		key = strconv.Itoa(attempt)
	}
	a.emitKeyed(at, id, event, key, detail)
}

// emitRun is emit for an event of one run of img: attempts count from 1
// again once a failed image is queued again (model.Image.Retries), so the
// run is part of the event's id, lest the logger take the event for the
// same one of the run before.
func (a activity) emitRun(img *model.Image, event string, attempt int, detail string) {
	a.emitAs(img.ID, event, runKey(img, strconv.Itoa(attempt)), detail)
}

// runKey is key within img's run.
func runKey(img *model.Image, key string) string {
	if img.Retries > 0 {
		return "r" + strconv.Itoa(img.Retries) + "." + key
	}
	return key
}

// emitAs is emit with the event id's last part given: what tells this
// occurrence from others of the same event (key "" makes it unique).
func (a activity) emitAs(id, event, key, detail string) {
	a.emitKeyed(time.Now(), id, event, key, detail)
}

func (a activity) emitKeyed(at time.Time, id, event, key, detail string) {
	if key == "" {
		key = nuid.Next()
	}
	a.deps.Activity.Emit(model.Event{
		ID:       id + "." + event + "." + key,
		ImageID:  id,
		Time:     at.UTC(),
		Role:     a.role,
		Instance: a.deps.Instance,
		Event:    event,
		Detail:   detail,
	})
}
