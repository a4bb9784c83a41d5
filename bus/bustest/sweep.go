package bustest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
)

// testStageSweep: Staged lists the blobs written before a time, oldest
// first, once each however many chunks they take, and DeleteVersion
// removes a listed blob but spares one written again since.
func testStageSweep(t *testing.T, b bus.Bus) {
	st := b.Stage()
	ctx := ctxFor(t)
	big := bytes.Repeat([]byte("chunked "), 400<<10) // 3.2 MiB: several messages
	old := map[string][]byte{
		model.OriginalKey("sweep-small"):   []byte("small"),
		model.OriginalKey("sweep-big"):     big,
		model.OriginalKey("sweep-rewrite"): []byte("first write"),
	}
	order := []string{model.OriginalKey("sweep-small"), model.OriginalKey("sweep-big"), model.OriginalKey("sweep-rewrite")}
	for _, k := range order {
		if err := st.Put(ctx, k, old[k]); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	young := model.OriginalKey("sweep-young")
	if err := st.Put(ctx, young, []byte("young")); err != nil {
		t.Fatal(err)
	}

	// Ages count back from the latest write, on the bus's clock.
	listed := staged(t, st, 150*time.Millisecond)
	var keys []string
	for _, blob := range listed {
		keys = append(keys, blob.Key)
		if blob.Written.IsZero() || blob.Version == "" {
			t.Errorf("%s: written %s, version %q", blob.Key, blob.Written, blob.Version)
		}
	}
	if !slices.Equal(keys, order) {
		t.Fatalf("staged 150ms before the latest write: %q, want %q, oldest first", keys, order)
	}
	if none := staged(t, st, time.Hour); len(none) != 0 {
		t.Fatalf("staged an hour before the latest write: %d blobs, want none", len(none))
	}

	// Written again after it was listed: its listed version is gone.
	rewrite := model.OriginalKey("sweep-rewrite")
	if err := st.Put(ctx, rewrite, big[:len(big)/2]); err != nil {
		t.Fatal(err)
	}
	for _, blob := range listed {
		deleted, err := st.DeleteVersion(ctx, blob.Key, blob.Version)
		if err != nil {
			t.Fatalf("delete version of %s: %v", blob.Key, err)
		}
		if want := blob.Key != rewrite; deleted != want {
			t.Errorf("delete version of %s: deleted %v, want %v", blob.Key, deleted, want)
		}
	}
	for _, k := range order[:2] {
		if _, err := st.GetLatest(ctx, k); !errors.Is(err, bus.ErrNotFound) {
			t.Errorf("get %s after its version was deleted: %v, want not found", k, err)
		}
	}
	for k, want := range map[string][]byte{rewrite: big[:len(big)/2], young: []byte("young")} {
		if data, err := st.GetLatest(ctx, k); err != nil || !bytes.Equal(data, want) {
			t.Errorf("get %s, written after the listing: %d bytes, %v; want %d bytes", k, len(data), err, len(want))
		}
	}
	// Deleting again, or a key never staged, deletes nothing.
	if deleted, err := st.DeleteVersion(ctx, order[0], listed[0].Version); deleted || err != nil {
		t.Errorf("second delete: %v, %v", deleted, err)
	}
	// The big blob's key takes a new write whole: no chunk of the deleted
	// one is left to mix in.
	if err := st.Put(ctx, order[1], []byte("again")); err != nil {
		t.Fatal(err)
	}
	if data, err := st.GetLatest(ctx, order[1]); err != nil || string(data) != "again" {
		t.Errorf("rewritten after its delete: %q, %v", data, err)
	}
}

func staged(t *testing.T, st bus.Stage, age time.Duration) []bus.StagedBlob {
	t.Helper()
	var out []bus.StagedBlob
	if err := st.Staged(ctxFor(t), age, func(blob bus.StagedBlob) error {
		out = append(out, blob)
		return nil
	}); err != nil {
		t.Fatalf("staged: %v", err)
	}
	return out
}

// testQueued: a work queue's message is queued until a consumer settles
// it; other subjects are not.
func testQueued(t *testing.T, b bus.Bus) {
	ctx := ctxFor(t)
	publish(t, b, bus.Message{Queue: bus.Transform, Subject: "q1", Data: []byte("work")})
	queued := func(subject string) bool {
		t.Helper()
		ok, err := b.Queued(ctx, bus.Transform, subject)
		if err != nil {
			t.Fatalf("queued %s: %v", subject, err)
		}
		return ok
	}
	if !queued("q1") || queued("q2") {
		t.Fatalf("queued q1 %v, q2 %v: want only q1", queued("q1"), queued("q2"))
	}
	got := make(chan delivered, 1)
	consume(t, b, bus.ConsumerConfig{Queue: bus.Transform, Durable: "queued"}, func(_ context.Context, d bus.Delivery) error {
		got <- record(d)
		return nil
	})
	recv(t, got, "the queued message")
	deadline := time.Now().Add(patience)
	for queued("q1") {
		if time.Now().After(deadline) {
			t.Fatal("still queued after its ack")
		}
		time.Sleep(probeEvery)
	}
	if _, err := b.Queued(ctx, bus.Activity, "q1"); err == nil {
		t.Error("queued on the activity feed, which is no work queue: no error")
	}
}
