package storetest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/model"
)

// base is the suite's clock: every time is base plus whole milliseconds.
var base = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

func at(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }

// randomBytes returns n bytes that differ with seed, so that a store
// returning the wrong blob (or a mix of two) is caught.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// newImage returns a record with every field set, so that a field a store
// forgets to keep shows up as a difference.
func newImage(id string, status model.Status, created time.Time) *model.Image {
	img := &model.Image{
		ID:     id,
		Status: status,
		Spec:   "fit=800x600&format=webp",
		Original: model.Info{
			Format: "jpeg", Width: 4000, Height: 3000, Size: 2_345_678,
			SHA256:      "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			Orientation: 6, ColorSpace: "srgb", Pages: 1,
			ICCProfile: "sRGB IEC61966-2.1", Filename: "IMG_0001.JPG",
			EXIF: &model.EXIF{Make: "Canon", Model: "EOS R5", Lens: "RF24-105mm", DateTaken: "2024:07:01 10:11:12", GPSPresent: true},
		},
		CreatedAt: created,
		UpdatedAt: created.Add(1500 * time.Millisecond),
	}
	switch status {
	case model.StatusDone:
		img.Results = []model.Result{
			{Variant: model.DefaultVariant, Spec: img.Spec, Info: model.Info{Format: "webp", Width: 800, Height: 600, Size: 45_678, SHA256: "ab12"}},
			{Variant: "thumb", Spec: "fit=160x160&format=avif", Info: model.Info{Format: "avif", Width: 160, Height: 120, Size: 3_210, SHA256: "cd34", Alpha: true}},
		}
		img.Attempts = 2
	case model.StatusFailed:
		img.Error, img.ErrorCode = "decode: premature end of JPEG file", "undecodable"
		img.Attempts = 5
	}
	return img
}

func newEvent(id, imageID string, t time.Time) model.Event {
	return model.Event{
		ID: id, ImageID: imageID, Time: t,
		Role: "transform", Instance: "host-1/4242",
		Event: model.EventTransformDone, Detail: "800x600 webp in 41ms",
	}
}

// normImage and normEvent put times in UTC without a monotonic reading, so
// that reflect.DeepEqual compares values, not representations.
func normImage(img model.Image) model.Image {
	img.CreatedAt = img.CreatedAt.UTC()
	img.UpdatedAt = img.UpdatedAt.UTC()
	return img
}

func normEvent(ev model.Event) model.Event {
	ev.Time = ev.Time.UTC()
	return ev
}

func checkImage(t *testing.T, got *model.Image, want *model.Image) {
	t.Helper()
	if got == nil {
		t.Fatalf("image %s: got nil", want.ID)
	}
	if !reflect.DeepEqual(normImage(*got), normImage(*want)) {
		t.Fatalf("image %s differs:\n got %s\nwant %s", want.ID, dump(got), dump(want))
	}
}

func checkEvents(t *testing.T, what string, got, want []model.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d events %v, want %d %v", what, len(got), eventIDs(got), len(want), eventIDs(want))
	}
	for i := range got {
		if !reflect.DeepEqual(normEvent(got[i]), normEvent(want[i])) {
			t.Fatalf("%s: event %d differs:\n got %s\nwant %s", what, i, dump(got[i]), dump(want[i]))
		}
	}
}

// checkIDs compares the ids of a listing with the expected ones, in order.
func checkIDs(t *testing.T, what string, got []model.Image, want []string) {
	t.Helper()
	ids := imageIDs(got)
	if !reflect.DeepEqual(ids, want) && (len(ids) != 0 || len(want) != 0) {
		t.Fatalf("%s:\n got %v\nwant %v", what, ids, want)
	}
}

func imageIDs(imgs []model.Image) []string {
	ids := make([]string, len(imgs))
	for i, img := range imgs {
		ids[i] = img.ID
	}
	return ids
}

func eventIDs(evs []model.Event) []string {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return ids
}

func dump(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}
