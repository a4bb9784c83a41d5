package model

import "testing"

func TestStatus(t *testing.T) {
	for _, s := range []Status{StatusQueued, StatusProcessing, StatusDone, StatusFailed} {
		if !s.Valid() {
			t.Errorf("%s not valid", s)
		}
		if s.Final() != (s == StatusDone || s == StatusFailed) {
			t.Errorf("%s: Final %v", s, s.Final())
		}
	}
	if Status("weird").Valid() || Status("").Valid() {
		t.Error("unknown status valid")
	}
}

func TestResultByVariant(t *testing.T) {
	img := Image{Results: []Result{{Variant: "thumb"}, {Variant: "web"}}}
	if r, ok := img.Result("web"); !ok || r.Variant != "web" {
		t.Errorf("web: %v %v", r, ok)
	}
	if _, ok := img.Result("huge"); ok {
		t.Error("unknown variant found")
	}
	if OriginalKey("x") != "originals/x" || ResultKey("x", "thumb") != "results/x/thumb" {
		t.Error("keys changed: stored blobs would be lost")
	}
}

func TestReplaces(t *testing.T) {
	q, p, d, f := StatusQueued, StatusProcessing, StatusDone, StatusFailed
	// allowed[cur] lists what may replace a record with status cur.
	allowed := map[Status][]Status{q: {q, p, d, f}, p: {q, p, d, f}, d: {d}, f: {d}}
	for cur, ok := range allowed {
		for _, next := range []Status{q, p, d, f} {
			want := false
			for _, s := range ok {
				want = want || s == next
			}
			if got := Replaces(next, cur); got != want {
				t.Errorf("Replaces(%s, %s) = %v, want %v", next, cur, got, want)
			}
		}
	}
}

// A failed image queued again by a new upload (one more Retries) may be
// replaced by every record of its new run; nothing else undoes a failure.
func TestSupersedes(t *testing.T) {
	failed := &Image{Status: StatusFailed, Retries: 1}
	for _, c := range []struct {
		next *Image
		want bool
	}{
		{&Image{Status: StatusQueued, Retries: 1}, false},
		{&Image{Status: StatusQueued, Retries: 2}, true},
		{&Image{Status: StatusProcessing, Retries: 2}, true},
		{&Image{Status: StatusFailed, Retries: 2}, true},
		{&Image{Status: StatusFailed, Retries: 1}, false},
		{&Image{Status: StatusDone}, true},
	} {
		if got := Supersedes(c.next, failed); got != c.want {
			t.Errorf("%s (retries %d) over failed (retries 1): %v, want %v", c.next.Status, c.next.Retries, got, c.want)
		}
	}
	if Supersedes(&Image{Status: StatusQueued, Retries: 5}, &Image{Status: StatusDone}) {
		t.Error("a retry replaced a success")
	}
	// A late record of an earlier run does not undo the new one, unless it
	// is a success.
	rerun := &Image{Status: StatusProcessing, Retries: 2}
	if Supersedes(&Image{Status: StatusFailed, Retries: 1}, rerun) || Supersedes(&Image{Status: StatusQueued}, rerun) {
		t.Error("an earlier run's record replaced the new run's")
	}
	if !Supersedes(&Image{Status: StatusDone, Retries: 1}, rerun) {
		t.Error("an earlier run's success did not replace the new run's progress")
	}
}
