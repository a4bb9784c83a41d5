package transform

import (
	"image"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// storedFor makes the pixels a camera stores for an upright picture under
// EXIF orientation o, written from the EXIF definition of each value
// ("row 0 is the visual ..., column 0 is the visual ..."), independently
// of the package's own mapping.
func storedFor(up *image.RGBA, o int) *image.RGBA {
	W, H := up.Bounds().Dx(), up.Bounds().Dy()
	sw, sh := W, H
	if o >= 5 {
		sw, sh = H, W
	}
	st := image.NewRGBA(image.Rect(0, 0, sw, sh))
	for y := 0; y < sh; y++ {
		for x := 0; x < sw; x++ {
			var dx, dy int
			switch o {
			case 1: // row 0 top, column 0 left
				dx, dy = x, y
			case 2: // row 0 top, column 0 right
				dx, dy = W-1-x, y
			case 3: // row 0 bottom, column 0 right
				dx, dy = W-1-x, H-1-y
			case 4: // row 0 bottom, column 0 left
				dx, dy = x, H-1-y
			case 5: // row 0 left, column 0 top
				dx, dy = y, x
			case 6: // row 0 right, column 0 top
				dx, dy = W-1-y, x
			case 7: // row 0 right, column 0 bottom
				dx, dy = W-1-y, H-1-x
			case 8: // row 0 left, column 0 bottom
				dx, dy = y, H-1-x
			}
			st.SetRGBA(x, y, up.RGBAAt(dx, dy))
		}
	}
	return st
}

// Every EXIF orientation comes out upright: the quadrant colours land in
// place, the size is the upright one, and extract/gravity work in upright
// coordinates.
func TestEXIFOrientations(t *testing.T) {
	e := testEngine(t)
	up := quadImage(160, 80)
	for o := 1; o <= 8; o++ {
		data := fixtures.WithOrientation(encJPEG(t, storedFor(up, o)), o)
		info, err := e.Probe(data)
		if err != nil {
			t.Fatal(err)
		}
		sw, sh := 160, 80
		if o >= 5 {
			sw, sh = 80, 160
		}
		if info.Orientation != o || info.Width != sw || info.Height != sh {
			t.Errorf("o=%d: probe %+v", o, info)
		}
		for _, q := range []string{"format=png", "width=80&format=png"} {
			_, img := process(t, e, data, q)
			b := img.Bounds()
			if b.Dx() != 2*b.Dy() {
				t.Errorf("o=%d %s: not upright, %v", o, q, b)
			}
			w, h := b.Dx(), b.Dy()
			wantPixel(t, img, w/4, h/4, red, 30, "top-left")
			wantPixel(t, img, 3*w/4, h/4, green, 30, "top-right")
			wantPixel(t, img, w/4, 3*h/4, blue, 30, "bottom-left")
			wantPixel(t, img, 3*w/4, 3*h/4, yellow, 30, "bottom-right")
		}
		// Upright coordinates: the top-right quadrant is green.
		_, img := process(t, e, data, "extract=80,0,80,40&format=png")
		if b := img.Bounds(); b.Dx() != 80 || b.Dy() != 40 {
			t.Errorf("o=%d extract size %v", o, b)
		}
		wantPixel(t, img, 10, 10, green, 30, "extract")
		wantPixel(t, img, 70, 30, green, 30, "extract")
		// Cover gravity in upright terms too.
		_, img = process(t, e, data, "width=40&height=40&fit=cover&gravity=east&format=png")
		wantPixel(t, img, 20, 10, green, 30, "cover east")
	}
}

// storedRect agrees with the definition above for every orientation.
func TestStoredRect(t *testing.T) {
	up := image.NewRGBA(image.Rect(0, 0, 7, 5))
	for i := range up.Pix {
		up.Pix[i] = uint8(i / 4) // each pixel unique
	}
	r := Rect{Left: 2, Top: 1, Width: 3, Height: 2}
	for o := 1; o <= 8; o++ {
		st := storedFor(up, o)
		sr := storedRect(o, st.Bounds().Dx(), st.Bounds().Dy(), r)
		got := map[uint8]bool{}
		for y := sr.Top; y < sr.Top+sr.Height; y++ {
			for x := sr.Left; x < sr.Left+sr.Width; x++ {
				got[st.RGBAAt(x, y).R] = true
			}
		}
		for y := r.Top; y < r.Top+r.Height; y++ {
			for x := r.Left; x < r.Left+r.Width; x++ {
				if !got[up.RGBAAt(x, y).R] || len(got) != r.Width*r.Height {
					t.Fatalf("o=%d: stored rect %+v does not hold the region", o, sr)
				}
			}
		}
	}
}
