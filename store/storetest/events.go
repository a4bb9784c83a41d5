package storetest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
)

func testEventDedup(t *testing.T, o *opener) {
	s := o.fresh(t)
	ctx := t.Context()
	e1 := newEvent("e1", "img", at(1))
	e2 := newEvent("e2", "img", at(2))
	e3 := newEvent("e3", "img", at(3))
	appendEvents(t, s, e1, e2)
	appendEvents(t, s, e1, e3, e3) // one old, one new twice in the same call
	appendEvents(t, s, e2)
	appendEvents(t, s) // nothing to do is not an error

	// A redelivered event keeps its id; whatever else differs, the first
	// copy stays.
	changed := e1
	changed.Detail = "redelivered"
	appendEvents(t, s, changed)

	got, err := s.ImageEvents(ctx, "img")
	if err != nil {
		t.Fatalf("ImageEvents: %v", err)
	}
	checkEvents(t, "ImageEvents", got, []model.Event{e1, e2, e3})
	got, err = s.RecentEvents(ctx, 100)
	if err != nil {
		t.Fatalf("RecentEvents: %v", err)
	}
	checkEvents(t, "RecentEvents", got, []model.Event{e3, e2, e1})

	if err := s.AppendEvents(ctx, model.Event{ImageID: "img", Time: at(4)}); err == nil {
		t.Errorf("AppendEvents of an event without id: no error")
	}
}

func testImageEvents(t *testing.T, o *opener) {
	s := o.fresh(t)
	ctx := t.Context()
	a1, a2, a3 := newEvent("a1", "a", at(10)), newEvent("a2", "a", at(20)), newEvent("a3", "a", at(30))
	a2.Role, a2.Event, a2.Detail = "save2db", model.EventSaved, "" // an empty detail stays empty
	// Out of order, across calls, mixed with other images, one of which
	// has an id that starts with the other's.
	appendEvents(t, s, a3, newEvent("b1", "b", at(15)))
	appendEvents(t, s, newEvent("ab1", "ab", at(12)), a1)
	appendEvents(t, s, a2, newEvent("x1", "", at(25)))

	got, err := s.ImageEvents(ctx, "a")
	if err != nil {
		t.Fatalf("ImageEvents: %v", err)
	}
	checkEvents(t, "ImageEvents(a)", got, []model.Event{a1, a2, a3})
	got, err = s.ImageEvents(ctx, "missing")
	if err != nil || len(got) != 0 {
		t.Fatalf("ImageEvents(missing) = %v, %v; want none", eventIDs(got), err)
	}
}

func testRecentEvents(t *testing.T, o *opener) {
	s := o.fresh(t)
	ctx := t.Context()
	const n = 30
	events := make([]model.Event, n)
	for i := range events {
		events[i] = newEvent(fmt.Sprintf("e%02d", i), fmt.Sprintf("img-%d", i%3), at(i))
	}
	// Stored in a shuffled order, some in one call, some alone.
	shuffled := append([]model.Event(nil), events...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	appendEvents(t, s, shuffled[:20]...)
	for _, ev := range shuffled[20:] {
		appendEvents(t, s, ev)
	}

	newestFirst := make([]model.Event, n)
	for i := range events {
		newestFirst[i] = events[n-1-i]
	}
	for _, tc := range []struct{ limit, want int }{{1, 1}, {10, 10}, {n, n}, {100, n}, {0, min(n, store.DefaultListLimit)}} {
		got, err := s.RecentEvents(ctx, tc.limit)
		if err != nil {
			t.Fatalf("RecentEvents(%d): %v", tc.limit, err)
		}
		checkEvents(t, fmt.Sprintf("RecentEvents(%d)", tc.limit), got, newestFirst[:tc.want])
	}
}

func appendEvents(t *testing.T, s store.Store, events ...model.Event) {
	t.Helper()
	if err := s.AppendEvents(t.Context(), events...); err != nil {
		t.Fatalf("AppendEvents(%v): %v", eventIDs(events), err)
	}
}
