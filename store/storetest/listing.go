package storetest

import (
	"fmt"
	"testing"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
)

// Helpers for listing checks.

func putImage(t *testing.T, s store.Store, img *model.Image) {
	t.Helper()
	if err := s.PutImage(t.Context(), img); err != nil {
		t.Fatalf("PutImage(%s): %v", img.ID, err)
	}
}

// checkList checks one listing that must fit in a page.
func checkList(t *testing.T, s store.Store, q store.ListQuery, want []string) {
	t.Helper()
	page, err := s.ListImages(t.Context(), q)
	if err != nil {
		t.Fatalf("ListImages(%+v): %v", q, err)
	}
	if page.Next != "" {
		t.Fatalf("ListImages(%+v): unexpected next page %q", q, page.Next)
	}
	checkIDs(t, fmt.Sprintf("ListImages(%+v)", q), page.Images, want)
}

// checkPages follows Next from q until the end and compares the whole.
func checkPages(t *testing.T, s store.Store, q store.ListQuery, want []string) {
	t.Helper()
	var got []model.Image
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		if pages > len(want)+1 {
			t.Fatalf("ListImages(%+v): more pages than records", q)
		}
		page, err := s.ListImages(t.Context(), q)
		if err != nil {
			t.Fatalf("ListImages(%+v): %v", q, err)
		}
		if pages > 0 && len(page.Images) == 0 {
			t.Fatalf("ListImages(%+v): empty page after a Next (Next must be empty on the last page)", q)
		}
		if len(page.Images) > q.Limit {
			t.Fatalf("ListImages(%+v): %d images on a page", q, len(page.Images))
		}
		if page.Next != "" && len(page.Images) != q.Limit {
			t.Fatalf("ListImages(%+v): short page (%d) with a next page", q, len(page.Images))
		}
		for _, img := range page.Images {
			if seen[img.ID] {
				t.Fatalf("ListImages(%+v): %s listed twice", q, img.ID)
			}
			seen[img.ID] = true
		}
		got = append(got, page.Images...)
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	checkIDs(t, fmt.Sprintf("pages of %d", q.Limit), got, want)
}

func imagesOf(ids []string) []model.Image {
	imgs := make([]model.Image, len(ids))
	for i, id := range ids {
		imgs[i].ID = id
	}
	return imgs
}
