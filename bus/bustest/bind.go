package bustest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
)

// testBindStore: BoundStore finds none at first; the first binding is kept,
// whoever asks after, however many ask at once, and BoundStore reads it;
// replace records another for good, and empties the status table.
func testBindStore(t *testing.T, b bus.Bus) {
	ctx := ctxFor(t)
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	first := bus.StoreBinding{Store: "aaaa", Where: "/data/store", By: "one", At: at}
	if sb, err := b.BoundStore(ctx); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("BoundStore before any binding: %+v, %v; want ErrNotFound", sb, err)
	}
	// Processes starting together race: one binding wins, all see it.
	got := make([]bus.StoreBinding, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			sb := first
			if i > 0 {
				sb = bus.StoreBinding{Store: "other", Where: "elsewhere", By: "two", At: at.Add(time.Second)}
			}
			var err error
			if got[i], err = b.BindStore(ctx, sb, false); err != nil {
				t.Errorf("BindStore %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("BindStore answered %+v and %+v: want one binding for all", got[0], got[i])
		}
	}
	winner := got[0]
	if sb, err := b.BoundStore(ctx); err != nil || sb.Store != winner.Store || sb.By != winner.By || !sb.At.Equal(winner.At) {
		t.Fatalf("BoundStore: %+v, %v; want %+v", sb, err, winner)
	}
	if later, err := b.BindStore(ctx, bus.StoreBinding{Store: "late", By: "three", At: at}, false); err != nil || !later.At.Equal(winner.At) || later.Store != winner.Store || later.Where != winner.Where || later.By != winner.By {
		t.Fatalf("a later BindStore: %+v, %v; want the first, %+v", later, err, winner)
	}
	// Moved: the status records of the old store's images go too.
	img := &model.Image{ID: "0123456789abcdef0123456789abcdef", Status: model.StatusDone, CreatedAt: at}
	if _, created, err := b.Status().Create(ctx, img); err != nil || !created {
		t.Fatalf("status create: %v, created %v", err, created)
	}
	moved := bus.StoreBinding{Store: "moved", Where: "mongodb://new/imgpipe", By: "four", At: at}
	if got, err := b.BindStore(ctx, moved, true); err != nil || got.Store != "moved" {
		t.Fatalf("BindStore replacing: %+v, %v", got, err)
	}
	if got, err := b.Status().Get(ctx, img.ID); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("a status record after the store was replaced: %+v, %v; want none", got, err)
	}
	if got, err := b.BindStore(ctx, first, false); err != nil || got.Store != "moved" || got.Where != moved.Where {
		t.Fatalf("BindStore after a replace: %+v, %v; want %+v", got, err, moved)
	}
	if got, err := b.BoundStore(ctx); err != nil || got.Store != "moved" {
		t.Fatalf("BoundStore after a replace: %+v, %v; want %+v", got, err, moved)
	}
}
