package transform

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"net/http"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fixtures"
)

var grey = color.RGBA{128, 128, 128, 255}

// changed counts, per quadrant (NW, NE, SW, SE), pixels that differ from
// the plain grey background.
func changed(img image.Image) [4]int {
	var n [4]int
	b := img.Bounds()
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			if !near(rgba(img, x, y), grey, 6) {
				q := 0
				if x >= b.Dx()/2 {
					q++
				}
				if y >= b.Dy()/2 {
					q += 2
				}
				n[q]++
			}
		}
	}
	return n
}

func TestTextWatermarkPlacement(t *testing.T) {
	e := testEngine(t)
	bg := encPNG(t, fixtures.Solid(400, 300, grey))
	cases := map[string][4]bool{ // which quadrants must change
		"":                              {false, false, false, true}, // southeast default
		"&watermark_position=northwest": {true, false, false, false},
		"&watermark_position=northeast": {false, true, false, false},
		"&watermark_position=southwest": {false, false, true, false},
		"&watermark_position=south":     {false, false, true, true},
		"&watermark_position=tile":      {true, true, true, true},
		"&watermark_position=center&watermark_size=0.5": {true, true, true, true},
	}
	for extra, want := range cases {
		_, img := process(t, e, bg, "format=png&watermark_text=imgpipe"+extra)
		got := changed(img)
		for q := range got {
			if (got[q] > 0) != want[q] {
				t.Errorf("%q: changed pixels per quadrant %v, want %v", extra, got, want)
				break
			}
		}
	}
	// Size follows watermark_size: the marked width grows with it.
	width := func(q string) int {
		_, img := process(t, e, bg, "format=png&watermark_text=imgpipe&watermark_position=center"+q)
		minX, maxX := 1<<30, -1
		b := img.Bounds()
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				if !near(rgba(img, x, y), grey, 6) {
					minX, maxX = min(minX, x), max(maxX, x)
				}
			}
		}
		return maxX - minX
	}
	small, big := width("&watermark_size=0.2"), width("&watermark_size=0.8")
	if small < 60 || small > 110 || big < 290 || big > 340 {
		t.Errorf("watermark widths %d and %d for 0.2 and 0.8 of 400", small, big)
	}
}

func TestImageWatermark(t *testing.T) {
	e := testEngine(t)
	bg := encPNG(t, fixtures.Solid(400, 300, grey))
	logo := encPNG(t, fixtures.Solid(40, 40, red))
	run := func(q string, marks map[string][]byte) image.Image {
		out, _, err := e.Process(context.Background(), Input{Data: bg, Spec: spec(t, e, q), Watermarks: marks})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return decode(t, out)
	}
	img := run("format=png&watermark_image=logo&watermark_position=northeast&watermark_opacity=1", map[string][]byte{"logo": logo})
	// margin is 3% of 300 = 9: the logo spans x 351..390, y 9..48.
	wantPixel(t, img, 370, 28, red, 2, "logo")
	wantPixel(t, img, 340, 28, grey, 2, "left of logo")
	wantPixel(t, img, 370, 60, grey, 2, "below logo")
	if got := changed(img); got[0]+got[2]+got[3] != 0 {
		t.Errorf("changes outside the NE quadrant: %v", got)
	}
	// Default opacity 0.5: half way between grey and red.
	img = run("format=png&watermark_image=logo", map[string][]byte{"logo": logo})
	wantPixel(t, img, 370, 270, color.RGBA{191, 64, 64, 255}, 4, "half opacity")
	// watermark_size scales it to a share of the output width.
	img = run("format=png&watermark_image=logo&watermark_size=0.5&watermark_position=west&watermark_opacity=1", map[string][]byte{"logo": logo})
	wantPixel(t, img, 9+190, 150, red, 2, "scaled logo")
	wantPixel(t, img, 9+210, 150, grey, 2, "scaled logo edge")

	// Missing or unusable watermark bytes: 422.
	_, _, err := e.Process(context.Background(), Input{Data: bg, Spec: spec(t, e, "watermark_image=nope")})
	wantError(t, err, http.StatusUnprocessableEntity, CodeWatermark)
	_, _, err = e.Process(context.Background(), Input{Data: bg, Spec: spec(t, e, "watermark_image=bad"),
		Watermarks: map[string][]byte{"bad": []byte("not an image")}})
	wantError(t, err, http.StatusUnprocessableEntity, CodeWatermark)
	// A sound header over pixels that do not decode passes the checks; the
	// failure must still name the watermark, not the upload's encoding.
	var broken bytes.Buffer
	broken.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := []byte{0, 0, 0, 10, 0, 0, 0, 10, 8, 2, 0, 0, 0} // 10x10 RGB
	writeChunk(&broken, "IHDR", ihdr)
	writeChunk(&broken, "IDAT", []byte{1, 2, 3, 4, 5})
	writeChunk(&broken, "IEND", nil)
	if _, err := e.Probe(broken.Bytes()); err != nil {
		t.Fatalf("the broken watermark is refused at upload (%v): the test needs one that passes", err)
	}
	_, _, err = e.Process(context.Background(), Input{Data: bg, Spec: spec(t, e, "watermark_image=broken"),
		Watermarks: map[string][]byte{"broken": broken.Bytes()}})
	wantError(t, err, http.StatusUnprocessableEntity, CodeWatermark)
	if te, _ := AsError(err); te == nil || !strings.Contains(te.Message, "broken") {
		t.Errorf("error %v does not name the watermark", err)
	}
}
