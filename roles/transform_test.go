package roles

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store/local"
)

// delivery is a bus.Delivery the test makes up: a redelivery of an earlier
// run's message after the image was queued again needs a worker dying at
// the right moment to happen for real.
type delivery struct {
	data    []byte
	attempt int
}

func (d delivery) Subject() string             { return "x" }
func (d delivery) Data() []byte                { return d.data }
func (d delivery) Attempt() int                { return d.attempt }
func (d delivery) LastAttempt() bool           { return false }
func (d delivery) Exhausted() bool             { return false }
func (d delivery) MaxAttempts() int            { return 5 }
func (d delivery) Final() bool                 { return false }
func (d delivery) InProgress()                 {}
func (d delivery) SettleAfter(<-chan struct{}) {}

// A message of an earlier run, redelivered after the image was queued
// again, leaves the image to the new run: no render, no write.
func TestEarlierRunsMessageLeavesTheImageToTheNewRun(t *testing.T) {
	b := realBus(t)
	st, err := local.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := Deps{Bus: b, Store: st, Log: slog.New(slog.DiscardHandler), Metrics: NewMetrics(), Activity: NewActivity(b, st, nil)}
	tr := &transformer{deps: d, act: activity{d, "transform"}, stopping: make(chan struct{})}

	now := time.Now().UTC()
	old := &model.Image{ID: "0123456789abcdef0123456789abcdef", Status: model.StatusQueued, Spec: "width=10", CreatedAt: now, UpdatedAt: now}
	msg, _ := json.Marshal(old)
	failed := *old
	failed.Status, failed.ErrorCode, failed.Attempts = model.StatusFailed, "timeout", 5
	if err := b.Status().Put(t.Context(), &failed); err != nil {
		t.Fatal(err)
	}
	rerun := *old
	rerun.Retries = 1
	if err := b.Status().Put(t.Context(), &rerun); err != nil {
		t.Fatal(err)
	}

	// No engine: a render would panic.
	if err := tr.handle(t.Context(), delivery{msg, 2}); err != nil {
		t.Fatal(err)
	}
	cur, err := b.Status().Get(t.Context(), old.ID)
	if err != nil || cur.Status != model.StatusQueued || cur.Retries != 1 {
		t.Fatalf("record %+v (%v): want the new run's, untouched", cur, err)
	}
	var m dto.Metric
	if err := d.Metrics.Handled.WithLabelValues("transform", "superseded").Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("superseded deliveries counted %v (%v), want 1", m.GetCounter().GetValue(), err)
	}
}
