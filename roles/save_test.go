package roles

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/transform"
)

// TestSaveMessagePerOutcome: a failed record and a later done one for the
// same image are two messages for save2db, not one publish retried and
// deduplicated away (which left the store saying failed while the status
// table said done); the same outcome published twice is one message.
func TestSaveMessagePerOutcome(t *testing.T) {
	b := realBus(t)
	ctx := t.Context()
	img := &model.Image{ID: "abc123", Status: model.StatusFailed, Error: "processing took too long"}
	for _, st := range []model.Status{model.StatusFailed, model.StatusFailed, model.StatusDone, model.StatusDone} {
		img.Status = st
		if err := publishSave(ctx, b, img); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan model.Status, 8)
	c, err := b.Consume(ctx, bus.ConsumerConfig{Queue: bus.Save, Durable: "test", Workers: 1}, func(_ context.Context, d bus.Delivery) error {
		var m model.Image
		if err := json.Unmarshal(d.Data(), &m); err != nil {
			t.Error(err)
		}
		got <- m.Status
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Drain(context.Background())
	var seen []model.Status
	timeout := time.After(3 * time.Second)
	for {
		select {
		case st := <-got:
			seen = append(seen, st)
			continue
		case <-timeout:
		}
		break
	}
	if len(seen) != 2 || seen[0] != model.StatusFailed || seen[1] != model.StatusDone {
		t.Fatalf("save messages: %v, want [failed done]", seen)
	}
}

// Only failures that come from the machine at the time are tried again
// when the image is uploaded again; the image's own are answered as they
// are.
func TestRetryableFailure(t *testing.T) {
	for code, want := range map[string]bool{
		transform.CodeTimeout: true, transform.CodeCanceled: true, transform.CodeInternal: true,
		codeWorkersStopped: true, CodeTransformFailed: true,
		transform.CodeUndecodable: false, transform.CodeTooLarge: false, transform.CodeWatermark: false,
		transform.CodeUnencodable: false, transform.CodeCorrupt: false,
		"": true, // an older version's record, served as transform_failed
	} {
		if got := RetryableFailure(code); got != want {
			t.Errorf("RetryableFailure(%q) = %v, want %v", code, got, want)
		}
	}
}
