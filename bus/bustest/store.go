package bustest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
)

// testStage: blobs of every size round-trip (3 MiB is beyond a 1 MB
// message), can be replaced and deleted, and absent keys say so.
func testStage(t *testing.T, b bus.Bus) {
	st := b.Stage()
	ctx := ctxFor(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 300 << 10, 3 << 20} {
		key := model.ResultKey("img"+fmt.Sprint(size), model.DefaultVariant)
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		if err := st.Put(ctx, key, data); err != nil {
			t.Fatalf("put %d bytes: %v", size, err)
		}
		if back, err := st.GetLatest(ctx, key); err != nil || !bytes.Equal(back, data) {
			t.Fatalf("get latest %d bytes: got %d bytes, %v", size, len(back), err)
		}
		replicaSettles(t, st, key, data)
	}

	// Replacing a key with smaller, larger, then smaller bytes returns the
	// latest whole, never a mix of versions' pieces.
	key := model.OriginalKey("abc")
	big := bytes.Repeat([]byte("large blob "), 200<<10)
	versions := [][]byte{big, []byte("first version, longer"), big[:len(big)/2], []byte("second")}
	for i, v := range versions {
		if err := st.Put(ctx, key, v); err != nil {
			t.Fatal(err)
		}
		if back, err := st.GetLatest(ctx, key); err != nil || !bytes.Equal(back, v) {
			t.Fatalf("get latest after replace %d: %d bytes, %v; want %d bytes", i, len(back), err, len(v))
		}
		replicaSettles(t, st, key, v, versions[:i]...)
	}
	if err := st.Delete(ctx, key); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := st.GetLatest(ctx, key); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("get latest deleted: %v, want ErrNotFound", err)
	}
	replicaSettles(t, st, key, nil, versions...)
	if err := st.Delete(ctx, key); err != nil {
		t.Fatalf("delete twice (a redelivered save does): %v", err)
	}
	if _, err := st.Get(ctx, "originals/never"); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("get unknown: %v, want ErrNotFound", err)
	}
}

// replicaSettles reads key with Stage.Get, which may ask a replica that
// lags, until it answers want (nil: not found). Until then it may miss or
// answer one of the earlier versions, but only whole.
func replicaSettles(t *testing.T, st bus.Stage, key string, want []byte, earlier ...[]byte) {
	t.Helper()
	known := func(data []byte) bool {
		for _, v := range earlier {
			if bytes.Equal(data, v) {
				return true
			}
		}
		return false
	}
	ctx := ctxFor(t)
	deadline := time.Now().Add(patience)
	for {
		data, err := st.Get(ctx, key)
		switch {
		case want == nil && errors.Is(err, bus.ErrNotFound), want != nil && err == nil && bytes.Equal(data, want):
			return
		case err != nil && !errors.Is(err, bus.ErrNotFound):
			t.Fatalf("get %s: %v", key, err)
		case err == nil && !known(data):
			t.Fatalf("get %s: %d bytes that are no version put", key, len(data))
		case time.Now().After(deadline):
			t.Fatalf("get %s: still %d bytes, %v after %s; want %d bytes", key, len(data), err, patience, len(want))
		}
		time.Sleep(probeEvery)
	}
}

func image(id, spec string) *model.Image {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &model.Image{ID: id, Status: model.StatusQueued, Spec: spec,
		Original:  model.Info{Format: "jpeg", Width: 640, Height: 480, Size: 1234},
		CreatedAt: now, UpdatedAt: now}
}

// testStatusCreateRace: ten instances create the same id at once; one
// wins and every one of them gets the winner's record back.
func testStatusCreateRace(t *testing.T, b bus.Bus) {
	const n = 10
	type result struct {
		img     *model.Image
		created bool
		err     error
	}
	ctx := ctxFor(t)
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			img, created, err := b.Status().Create(ctx, image("race1", fmt.Sprintf("w=%d", i)))
			results[i] = result{img, created, err}
		})
	}
	close(start)
	wg.Wait()

	winners := 0
	var spec string
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("create %d: %v", i, r.err)
		}
		if r.created {
			winners++
			spec = r.img.Spec
		}
	}
	if winners != 1 {
		t.Fatalf("%d creates succeeded, want exactly 1", winners)
	}
	for i, r := range results {
		if r.img == nil || r.img.ID != "race1" || r.img.Spec != spec {
			t.Errorf("create %d returned %+v, want the winner's record (spec %s)", i, r.img, spec)
		}
	}
	if got, err := b.Status().Get(ctx, "race1"); err != nil || got.Spec != spec {
		t.Fatalf("get: %+v, %v; want spec %s", got, err, spec)
	}
}

// testStatusGetPut: unknown ids are ErrNotFound; Put replaces the record.
func testStatusGetPut(t *testing.T, b bus.Bus) {
	ctx := ctxFor(t)
	if _, err := b.Status().Get(ctx, "unknown0"); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("get unknown: %v, want ErrNotFound", err)
	}
	img := image("put1", "w=100")
	if _, created, err := b.Status().Create(ctx, img); err != nil || !created {
		t.Fatalf("create: created %v, %v", created, err)
	}
	img.Status = model.StatusDone
	img.Attempts = 2
	img.UpdatedAt = img.UpdatedAt.Add(time.Second)
	img.Results = []model.Result{{Variant: model.DefaultVariant, Spec: "w=100", Info: model.Info{Format: "webp", Width: 100, Height: 75, Size: 99}}}
	if err := b.Status().Put(ctx, img); err != nil {
		t.Fatalf("put: %v", err)
	}
	got, err := b.Status().Get(ctx, "put1")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Status != model.StatusDone || got.Attempts != 2 || !got.UpdatedAt.Equal(img.UpdatedAt) ||
		!got.CreatedAt.Equal(img.CreatedAt) || len(got.Results) != 1 || got.Results[0] != img.Results[0] {
		t.Fatalf("got %+v, want %+v", got, img)
	}
}

// testStatusNeverUndone: a slow worker's "processing" or "failed" does not
// overwrite the "done" a faster one recorded; a done does replace a failed.
// Ten writers racing with mixed statuses still end on done.
func testStatusNeverUndone(t *testing.T, b bus.Bus) {
	ctx := ctxFor(t)
	put := func(img *model.Image, s model.Status) {
		img.Status = s
		if err := b.Status().Put(ctx, img); err != nil {
			t.Fatalf("put %s: %v", s, err)
		}
	}
	status := func(id string) model.Status {
		got, err := b.Status().Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status
	}
	img := image("undone1", "w=1")
	put(img, model.StatusDone)
	for _, s := range []model.Status{model.StatusProcessing, model.StatusQueued, model.StatusFailed} {
		put(img, s)
		if got := status("undone1"); got != model.StatusDone {
			t.Fatalf("after put %s: %s, want done kept", s, got)
		}
	}
	other := image("undone2", "w=1")
	put(other, model.StatusFailed)
	put(other, model.StatusProcessing)
	if got := status("undone2"); got != model.StatusFailed {
		t.Fatalf("processing over failed: %s", got)
	}
	put(other, model.StatusDone)
	if got := status("undone2"); got != model.StatusDone {
		t.Fatalf("done over failed: %s", got)
	}

	// A late success replaces a failure, but the attempts never count
	// down: the record keeps the highest that began, whichever path the
	// write takes (the writer's last revision of a record not final, or a
	// fresh read of a final one).
	late := image("undone4", "w=1")
	late.Attempts = 2
	put(late, model.StatusProcessing)
	late.Attempts = 1
	put(late, model.StatusProcessing)
	if got, err := b.Status().Get(ctx, "undone4"); err != nil || got.Attempts != 2 || late.Attempts != 2 {
		t.Fatalf("attempt 1 written after attempt 2 began: %+v (%v), written %d, want 2", got, err, late.Attempts)
	}
	late.Attempts = 3
	put(late, model.StatusFailed)
	late.Attempts = 1
	put(late, model.StatusDone)
	if got, err := b.Status().Get(ctx, "undone4"); err != nil || got.Status != model.StatusDone || got.Attempts != 3 {
		t.Fatalf("done by attempt 1 after attempt 3 failed: %+v (%v), want done, 3 attempts", got, err)
	}

	// Runs: a failed image queued again (one more Retries) is replaced by
	// the new run's records, and a late record of the old run changes
	// nothing but with a success.
	runs := image("undone5", "w=1")
	put(runs, model.StatusFailed)
	rerun := image("undone5", "w=1")
	rerun.Retries = 1
	put(rerun, model.StatusQueued)
	put(runs, model.StatusFailed) // late, of the old run
	put(runs, model.StatusProcessing)
	if got, err := b.Status().Get(ctx, "undone5"); err != nil || got.Status != model.StatusQueued || got.Retries != 1 {
		t.Fatalf("after the old run's late writes: %+v (%v), want the new run's queued", got, err)
	}
	put(runs, model.StatusDone)
	if got := status("undone5"); got != model.StatusDone {
		t.Fatalf("the old run's success: %s, want done", got)
	}

	// Reopen: a new run replaces its image's failure once, whoever races
	// for it, and nothing else.
	reopen := func(img *model.Image) (*model.Image, bool) {
		t.Helper()
		cur, ok, err := b.Status().Reopen(ctx, img)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		return cur, ok
	}
	again := image("undone6", "w=1")
	put(again, model.StatusFailed)
	next := image("undone6", "w=1")
	next.Retries = 1
	var won atomic.Int32
	var racers sync.WaitGroup
	for range 5 {
		racers.Go(func() {
			if cur, ok := reopen(next); ok {
				won.Add(1)
			} else if cur.Retries != 1 || cur.Status != model.StatusQueued {
				t.Errorf("a racer that lost read %+v, want the winner's record", cur)
			}
		})
	}
	racers.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d uploads reopened one failure, want 1", won.Load())
	}
	put(next, model.StatusProcessing)
	if cur, ok := reopen(next); ok || cur.Status != model.StatusProcessing {
		t.Fatalf("reopen over the new run's progress: wrote %v, record %+v", ok, cur)
	}
	if _, ok := reopen(image("undone1", "w=1")); ok {
		t.Fatal("reopened a done image")
	}
	if cur, ok := reopen(image("undone7", "w=1")); !ok || cur.Status != model.StatusQueued {
		t.Fatalf("reopen of an image without a record (expired): %v %+v", ok, cur)
	}

	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			img := image("undone3", "w=1")
			img.Status = []model.Status{model.StatusProcessing, model.StatusDone, model.StatusFailed}[i%3]
			if err := b.Status().Put(ctx, img); err != nil {
				t.Errorf("put: %v", err)
			}
		})
	}
	wg.Wait()
	if got := status("undone3"); got != model.StatusDone {
		t.Fatalf("after racing writers: %s, want done", got)
	}
}

func testPing(t *testing.T, b bus.Bus) {
	if err := b.Ping(ctxFor(t)); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

// testStatusWatch: a watch reports the id of a record written once it runs
// (writes in quick succession may be reported once: the table keeps only
// a record's last revision, and a watch that lags sees that one), and
// returns nil when its context ends.
func testStatusWatch(t *testing.T, b bus.Bus) {
	ctx, cancel := context.WithCancel(ctxFor(t))
	ids := make(chan string, 100)
	done := make(chan error, 1)
	go func() { done <- b.Status().Watch(ctx, func(id string) { ids <- id }) }()
	// Writes before the watch is in place go unreported: write until one
	// is seen.
	seen := false
	for deadline := time.Now().Add(patience); !seen && time.Now().Before(deadline); {
		if err := b.Status().Put(ctxFor(t), image("warmup", "width=1")); err != nil {
			t.Fatal(err)
		}
		select {
		case id := <-ids:
			seen = id == "warmup"
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !seen {
		t.Fatal("the watch never reported a write")
	}
	img := image("watched", "width=2")
	if _, _, err := b.Status().Create(ctxFor(t), img); err != nil {
		t.Fatal(err)
	}
	img.Status = model.StatusDone
	if err := b.Status().Put(ctxFor(t), img); err != nil {
		t.Fatal(err)
	}
	for reported := false; !reported; {
		select {
		case id := <-ids:
			reported = id == "watched"
		case <-time.After(patience):
			t.Fatal("the record's writes were not reported")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Watch returned %v when its context ended", err)
		}
	case <-time.After(patience):
		t.Fatal("Watch did not return when its context ended")
	}
}
