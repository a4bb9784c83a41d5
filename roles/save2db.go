package roles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
)

// saver is the save2db role: it moves originals, results and records from
// the bus's staging area into the store for good, then clears the stage.
type saver struct {
	deps Deps
	act  activity
}

// NewSaver runs workers saves at once. It retries for ever: a save fails
// because the store is away, not because of the message, and giving up
// would lose an image.
func NewSaver(d Deps, workers int) Service {
	s := &saver{deps: d, act: activity{d, "save2db"}}
	return &consumerRole{name: "save2db", b: d.Bus, handle: s.handle,
		cfg: bus.ConsumerConfig{Queue: bus.Save, Durable: "save2db", Workers: workers, Retry: &bus.RetryForever, AckWait: redeliverAfter}, act: d.Activity, deps: &s.deps}
}

func (s *saver) handle(ctx context.Context, d bus.Delivery) error {
	var img model.Image
	if err := json.Unmarshal(d.Data(), &img); err != nil || img.ID == "" {
		s.deps.Metrics.Handled.WithLabelValues("save2db", "malformed").Inc()
		return bus.Permanent(fmt.Errorf("malformed save message: %v", err))
	}
	// An accepted record is written alone: its original stays staged (the
	// bus keeps it durably) until the final record, when original and
	// results move to the store together, once. Handled after the final
	// record, it changes nothing: the store never moves a record backwards.
	if !img.Status.Final() {
		if err := s.deps.Store.PutImage(ctx, &img); err != nil {
			return err
		}
		s.act.emitRun(&img, model.EventRecorded, d.Attempt(), "")
		s.deps.Metrics.Handled.WithLabelValues("save2db", "recorded").Inc()
		return nil
	}
	keys := []string{model.OriginalKey(img.ID)}
	digests := []string{""} // an original's key names its digest
	for _, r := range img.Results {
		keys = append(keys, model.ResultKey(img.ID, r.Variant))
		digests = append(digests, r.Info.SHA256)
	}
	blobs := make(map[string][]byte, len(keys))
	for i, k := range keys {
		data, err := s.staged(ctx, k, digests[i])
		if err != nil {
			return err
		}
		if data != nil {
			blobs[k] = data
		}
	}
	// One store write: once the record says done, every blob it names is
	// stored.
	if err := s.deps.Store.SaveImage(ctx, &img, blobs); err != nil {
		return err
	}
	// Everything is in the store: the stage can let go. Staged blobs have
	// no expiry, so one left behind would stay for good: when the bus is
	// away (electing a leader, say) the message comes back, and the save,
	// which finds the blobs stored, comes down to the deletes again. Any
	// other refusal would refuse every time: logged, not retried.
	for _, k := range keys {
		err := s.deps.Bus.Stage().Delete(ctx, k)
		switch {
		case err == nil, errors.Is(err, bus.ErrNotFound):
		case errors.Is(err, bus.ErrUnavailable):
			return fmt.Errorf("clearing the stage after the save: %w", err)
		default:
			s.deps.Log.Warn("stage not cleared", "key", k, "err", err)
		}
	}
	// One image can be saved twice, failed then done (see publishSave):
	// the event id names the outcome so that both stay in the timeline.
	s.act.emitAs(img.ID, model.EventSaved, runKey(&img, fmt.Sprintf("%s.%d", img.Status, d.Attempt())), strings.Join(keys, " "))
	s.deps.Metrics.Handled.WithLabelValues("save2db", "saved").Inc()
	return nil
}

// staged returns the staged blob under key, checked against digest (see
// stagedAs), or nil if the store already has it (a redelivery after the
// stage was cleared).
func (s *saver) staged(ctx context.Context, key, digest string) ([]byte, error) {
	data, err := stagedAs(ctx, s.deps.Bus, key, digest)
	if errors.Is(err, bus.ErrNotFound) {
		if ok, herr := s.deps.Store.HasBlob(ctx, key); herr != nil || ok {
			return nil, herr
		}
		data, err = latest(ctx, s.deps.Bus, key)
	}
	if data == nil && err == nil {
		data = []byte{} // staged and empty: still to be stored
	}
	return data, err
}
