package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
)

// testConcurrent has many writers at once, as save2db and logger instances
// are: each writes its own image, events and blob, and all of them write the
// same shared event ids, image and blob (redeliveries racing each other).
func testConcurrent(t *testing.T, o *opener) {
	s := o.fresh(t)
	ctx := t.Context()
	const writers, rounds = 20, 10
	shared := randomBytes(300<<10, 99)
	statuses := []model.Status{model.StatusQueued, model.StatusProcessing, model.StatusDone}

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			errs <- write(ctx, s, w, rounds, shared, statuses)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	for w := range writers {
		id := fmt.Sprintf("img-%02d", w)
		got, err := s.ImageEvents(ctx, id)
		if err != nil {
			t.Fatalf("ImageEvents(%s): %v", id, err)
		}
		if len(got) != rounds {
			t.Errorf("ImageEvents(%s): %d events, want %d", id, len(got), rounds)
		}
		img, err := s.GetImage(ctx, id)
		if err != nil || img.Status != model.StatusDone {
			t.Errorf("GetImage(%s) = %+v, %v; want status done", id, img, err)
		}
		checkBlob(t, s, model.ResultKey(id, model.DefaultVariant), randomBytes(1000+w, uint64(w)))
	}
	checkBlob(t, s, model.OriginalKey("shared"), shared)
	sharedEvents, err := s.ImageEvents(ctx, "shared")
	if err != nil || len(sharedEvents) != rounds {
		t.Errorf("ImageEvents(shared): %d events, %v; want %d", len(sharedEvents), err, rounds)
	}
	recent, err := s.RecentEvents(ctx, store.MaxListLimit)
	if err != nil || len(recent) != writers*rounds+rounds {
		t.Errorf("RecentEvents: %d events, %v; want %d", len(recent), err, writers*rounds+rounds)
	}
	all := []string{"shared"} // created last of all
	for w := writers - 1; w >= 0; w-- {
		all = append(all, fmt.Sprintf("img-%02d", w))
	}
	checkPages(t, s, store.ListQuery{Limit: 6}, all)
	checkPages(t, s, store.ListQuery{Limit: 6, Status: model.StatusDone}, all[1:])
}

// write is one concurrent writer's work.
func write(ctx context.Context, s store.Store, w, rounds int, shared []byte, statuses []model.Status) error {
	id := fmt.Sprintf("img-%02d", w)
	for r := range rounds {
		events := []model.Event{
			newEvent(fmt.Sprintf("%s-e%02d", id, r), id, at(r*100+w)),
			newEvent(fmt.Sprintf("shared-e%02d", r), "shared", at(r*100)),
		}
		if err := s.AppendEvents(ctx, events...); err != nil {
			return fmt.Errorf("writer %d: AppendEvents: %w", w, err)
		}
		status := statuses[min(r, len(statuses)-1)]
		if err := s.PutImage(ctx, newImage(id, status, at(w))); err != nil {
			return fmt.Errorf("writer %d: PutImage: %w", w, err)
		}
		if err := s.PutImage(ctx, newImage("shared", model.StatusQueued, at(1000))); err != nil {
			return fmt.Errorf("writer %d: PutImage(shared): %w", w, err)
		}
	}
	if err := s.PutBlob(ctx, model.ResultKey(id, model.DefaultVariant), randomBytes(1000+w, uint64(w))); err != nil {
		return fmt.Errorf("writer %d: PutBlob: %w", w, err)
	}
	if err := s.PutBlob(ctx, model.OriginalKey("shared"), shared); err != nil {
		return fmt.Errorf("writer %d: PutBlob(shared): %w", w, err)
	}
	return nil
}
