package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
)

func testImagePutGet(t *testing.T, o *opener) {
	s := o.fresh(t)
	ctx := t.Context()
	// The store keeps records as given; judging them is the roles' job, so
	// even a record without a status is kept.
	for _, status := range []model.Status{model.StatusQueued, model.StatusDone, model.StatusFailed, ""} {
		img := newImage("img-"+string(status), status, at(1))
		putImage(t, s, img)
		got, err := s.GetImage(ctx, img.ID)
		if err != nil {
			t.Fatalf("GetImage(%s): %v", img.ID, err)
		}
		checkImage(t, got, img)
	}
	if _, err := s.GetImage(ctx, "img-missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetImage(missing): err = %v, want store.ErrNotFound", err)
	}
	if err := s.PutImage(ctx, &model.Image{Status: model.StatusQueued}); err == nil {
		t.Errorf("PutImage without an id: no error")
	}
}

// testImageUpdate walks one record through the pipeline and checks that the
// listing (all and by status) follows it, including a changed creation time.
func testImageUpdate(t *testing.T, o *opener) {
	s := o.fresh(t)
	ctx := t.Context()
	putImage(t, s, newImage("other", model.StatusQueued, at(50)))

	img := newImage("walker", model.StatusQueued, at(10))
	for _, status := range []model.Status{model.StatusQueued, model.StatusProcessing, model.StatusDone} {
		next := newImage(img.ID, status, img.CreatedAt)
		putImage(t, s, next)
		putImage(t, s, next) // the same write twice changes nothing
		got, err := s.GetImage(ctx, img.ID)
		if err != nil {
			t.Fatalf("GetImage: %v", err)
		}
		checkImage(t, got, next)
		checkList(t, s, store.ListQuery{}, []string{"other", "walker"})
		for _, st := range []model.Status{model.StatusQueued, model.StatusProcessing, model.StatusDone} {
			want := []string{}
			if st == status {
				want = append(want, "walker")
			}
			if st == model.StatusQueued {
				want = append([]string{"other"}, want...)
			}
			checkList(t, s, store.ListQuery{Status: st}, want)
		}
	}

	// A record whose creation time moves must move in the listing too.
	moved := newImage("walker", model.StatusDone, at(90))
	putImage(t, s, moved)
	checkList(t, s, store.ListQuery{}, []string{"walker", "other"})
	checkList(t, s, store.ListQuery{Status: model.StatusDone}, []string{"walker"})
	checkList(t, s, store.ListQuery{Status: model.StatusQueued}, []string{"other"})
}

// testImageNeverBackwards: once final, a record is not replaced by a
// record that is not (an "accepted" message handled after the "final" one);
// a failed record gives way to a done one, never the other way (a worker
// that timed out after another finished the image).
func testImageNeverBackwards(t *testing.T, o *opener) {
	s := o.fresh(t)
	ctx := t.Context()
	check := func(want *model.Image) {
		t.Helper()
		got, err := s.GetImage(ctx, "late")
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, got, want)
	}
	failed := newImage("late", model.StatusFailed, at(5))
	putImage(t, s, failed)
	again := newImage("late", model.StatusFailed, at(5))
	again.Attempts = 9 // a second failure does not rewrite the first
	putImage(t, s, again)
	check(failed)
	for _, st := range []model.Status{model.StatusQueued, model.StatusProcessing, ""} {
		putImage(t, s, newImage("late", st, at(5)))
		check(failed)
	}
	done := newImage("late", model.StatusDone, at(5))
	putImage(t, s, done)
	check(done)
	for _, st := range []model.Status{model.StatusQueued, model.StatusProcessing, "", model.StatusFailed} {
		putImage(t, s, newImage("late", st, at(5)))
		check(done)
	}
	checkList(t, s, store.ListQuery{Status: model.StatusQueued}, []string{})
	checkList(t, s, store.ListQuery{Status: model.StatusFailed}, []string{})
	checkList(t, s, store.ListQuery{Status: model.StatusDone}, []string{"late"})
	done2 := newImage("late", model.StatusDone, at(5))
	done2.Attempts = 3 // a later done record replaces an earlier one
	putImage(t, s, done2)
	check(done2)

	// A failure's one way back: a new run (one more Retries), whose
	// records replace the failure, its own failure included.
	check = func(want *model.Image) {
		t.Helper()
		got, err := s.GetImage(ctx, "retried")
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, got, want)
	}
	first := newImage("retried", model.StatusFailed, at(6))
	putImage(t, s, first)
	rerun := newImage("retried", model.StatusQueued, at(6))
	rerun.Retries = 1
	putImage(t, s, rerun)
	check(rerun)
	checkList(t, s, store.ListQuery{Status: model.StatusQueued}, []string{"retried"})
	refailed := newImage("retried", model.StatusFailed, at(6))
	refailed.Retries, refailed.Attempts = 1, 2
	putImage(t, s, refailed)
	check(refailed)
	stale := newImage("retried", model.StatusQueued, at(6))
	stale.Retries = 1 // of the run that failed: no way back
	putImage(t, s, stale)
	check(refailed)
	checkList(t, s, store.ListQuery{Status: model.StatusFailed}, []string{"retried"})
	third := newImage("retried", model.StatusQueued, at(6))
	third.Retries = 2
	putImage(t, s, third)
	check(third)
	late := newImage("retried", model.StatusFailed, at(6))
	late.Retries = 1 // a late record of an earlier run does not undo a new one
	putImage(t, s, late)
	putImage(t, s, newImage("retried", model.StatusProcessing, at(6)))
	check(third)
	success := newImage("retried", model.StatusDone, at(6))
	success.Retries = 1 // but its success does
	putImage(t, s, success)
	check(success)
}

func testImageOrder(t *testing.T, o *opener) {
	s := o.fresh(t)
	for _, img := range []*model.Image{
		newImage("c", model.StatusQueued, at(3)),
		newImage("z", model.StatusQueued, at(1)),
		newImage("a", model.StatusQueued, at(3)),
		newImage("m", model.StatusDone, at(5)),
		newImage("y", model.StatusQueued, at(0)),
		newImage("b", model.StatusFailed, at(3)),
		newImage("x", model.StatusQueued, time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)),
		newImage("w", model.StatusQueued, at(-1)),
		newImage("v", model.StatusQueued, time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC)), // before the Unix epoch
		newImage("u", model.StatusQueued, time.Time{}),                                     // a forgotten CreatedAt
	} {
		putImage(t, s, img)
	}
	// Newest first; equal times by id, descending.
	checkList(t, s, store.ListQuery{}, []string{"m", "c", "b", "a", "z", "y", "w", "x", "v", "u"})
}

func testImageStatusFilter(t *testing.T, o *opener) {
	s := o.fresh(t)
	statuses := []model.Status{model.StatusQueued, model.StatusProcessing, model.StatusDone, model.StatusFailed}
	want := map[model.Status][]string{}
	for i := 23; i >= 0; i-- { // newest first, as listed
		st := statuses[(i*7)%len(statuses)]
		id := fmt.Sprintf("img-%02d", i)
		want[st] = append(want[st], id)
	}
	for i := range 24 {
		st := statuses[(i*7)%len(statuses)]
		putImage(t, s, newImage(fmt.Sprintf("img-%02d", i), st, at(i/2))) // pairs share a time
	}
	for _, st := range statuses {
		checkList(t, s, store.ListQuery{Status: st}, want[st])
		checkPages(t, s, store.ListQuery{Status: st, Limit: 2}, want[st])
	}
	checkList(t, s, store.ListQuery{Status: "no-such-status"}, []string{})
}

// testImagePages pages through many records (with ties on time) and checks
// that every record comes exactly once, in order, even when a newer record
// arrives between two pages.
func testImagePages(t *testing.T, o *opener) {
	s := o.fresh(t)
	const n = 57
	var want []string
	for i := n - 1; i >= 0; i-- {
		want = append(want, fmt.Sprintf("img-%03d", i))
	}
	for i := range n {
		putImage(t, s, newImage(fmt.Sprintf("img-%03d", i), model.StatusDone, at(i/3)))
	}
	for _, limit := range []int{1, 7, 10, 56, 57, 58} {
		checkPages(t, s, store.ListQuery{Limit: limit}, want)
	}

	// A record newer than the first page must not shift later pages.
	ctx := t.Context()
	first, err := s.ListImages(ctx, store.ListQuery{Limit: 10})
	if err != nil {
		t.Fatalf("ListImages: %v", err)
	}
	putImage(t, s, newImage("img-newest", model.StatusDone, at(10_000)))
	got := imageIDs(first.Images)
	for cursor := first.Next; cursor != ""; {
		page, err := s.ListImages(ctx, store.ListQuery{Limit: 10, Cursor: cursor})
		if err != nil {
			t.Fatalf("ListImages: %v", err)
		}
		got = append(got, imageIDs(page.Images)...)
		cursor = page.Next
	}
	checkIDs(t, "pages with an insert in between", imagesOf(got), want)
}

func testImageLimits(t *testing.T, o *opener) {
	s := o.fresh(t)
	ctx := t.Context()
	const n = store.DefaultListLimit + 7
	for i := range n {
		putImage(t, s, newImage(fmt.Sprintf("img-%03d", i), model.StatusQueued, at(i)))
	}
	page, err := s.ListImages(ctx, store.ListQuery{})
	if err != nil {
		t.Fatalf("ListImages: %v", err)
	}
	if len(page.Images) != store.DefaultListLimit || page.Next == "" {
		t.Fatalf("limit 0: got %d images, next %q; want %d and a next page", len(page.Images), page.Next, store.DefaultListLimit)
	}
	page, err = s.ListImages(ctx, store.ListQuery{Limit: store.MaxListLimit * 10})
	if err != nil {
		t.Fatalf("ListImages: %v", err)
	}
	if len(page.Images) != n || page.Next != "" {
		t.Fatalf("huge limit: got %d images, next %q; want %d and no next page", len(page.Images), page.Next, n)
	}
	// An empty store lists nothing, without error.
	empty := o.fresh(t)
	page, err = empty.ListImages(ctx, store.ListQuery{})
	if err != nil || len(page.Images) != 0 || page.Next != "" {
		t.Fatalf("empty store: %d images, next %q, err %v", len(page.Images), page.Next, err)
	}
}

func testImageBadCursor(t *testing.T, o *opener) {
	s := o.fresh(t)
	putImage(t, s, newImage("a", model.StatusQueued, at(0)))
	for _, cursor := range []string{"%%%", "not a cursor!", "\x00\xff"} {
		_, err := s.ListImages(t.Context(), store.ListQuery{Cursor: cursor})
		if !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("cursor %q: err = %v, want store.ErrBadCursor", cursor, err)
		}
	}
}

// testImageRaceToInsert: save2db handles an image's accepted and final
// records at once on different workers; for a new id both writes race to
// insert it, and the final one must win whichever comes second.
func testImageRaceToInsert(t *testing.T, o *opener) {
	s := o.fresh(t)
	ctx := t.Context()
	for i := range 40 {
		id := fmt.Sprintf("race-%02d", i)
		final := model.StatusFailed
		if i%2 == 1 {
			final = model.StatusDone
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for _, st := range []model.Status{model.StatusQueued, final} {
			wg.Go(func() {
				<-start
				errs <- s.PutImage(ctx, newImage(id, st, at(i)))
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		}
		got, err := s.GetImage(ctx, id)
		if err != nil || got.Status != final {
			t.Fatalf("%s: %+v, %v; want status %s", id, got, err, final)
		}
	}
}
