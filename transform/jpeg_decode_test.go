package transform

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"github.com/h2non/bimg"

	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// Every eighth gives libjpeg's size (each side rounded up), the pixels of
// a baseline or progressive colour JPEG, or a grey one, in their layout.
func TestDirectDecodeScales(t *testing.T) {
	src := photoLike(203, 101) // odd sizes: every scale rounds
	baseline := encJPEG(t, src)
	progressive, err := bimg.NewImage(baseline).Process(bimg.Options{Type: bimg.JPEG, Quality: 95, Interlace: true})
	if err != nil {
		t.Fatal(err)
	}
	grey := image.NewGray(src.Bounds())
	for y := range 101 {
		for x := range 203 {
			grey.SetGray(x, y, color.Gray{Y: uint8(x + y)})
		}
	}
	e := testEngine(t)
	for _, c := range []struct {
		name   string
		data   []byte
		bands  int
		interp string
	}{
		{"baseline", baseline, 3, "srgb"},
		{"progressive", progressive, 3, "srgb"},
		{"grey", encJPEG(t, grey), 1, "b-w"},
	} {
		for eighths := 1; eighths <= 8; eighths++ {
			d, err := decodeDirect(c.data, eighths, false, directMax, false)
			if err != nil || d == nil {
				t.Fatalf("%s at %d/8: %v, declined %v", c.name, eighths, err, d == nil)
			}
			w, h := (203*eighths+7)/8, (101*eighths+7)/8
			if d.width != w || d.height != h || d.bands != c.bands || d.interpretation != c.interp || len(d.pix) != w*h*c.bands {
				t.Fatalf("%s at %d/8: %s, %d bytes; want %dx%d, %d bands, %s", c.name, eighths, d, len(d.pix), w, h, c.bands, c.interp)
			}
		}
		// At full size the pixels are those of libvips' loader (which
		// strip=false keeps to), the same libjpeg with the same settings.
		d, _ := decodeDirect(c.data, 8, false, directMax, false)
		_, ref := process(t, e, c.data, "format=png&strip=false")
		if diff := meanDiff(d, ref); diff > 0.01 {
			t.Errorf("%s: mean difference %.3f from libvips' loader", c.name, diff)
		}
	}
}

func (d *directImage) String() string {
	if d == nil {
		return "declined"
	}
	return fmt.Sprintf("%dx%d, %d bands, %s, icc %v", d.width, d.height, d.bands, d.interpretation, d.icc)
}

// meanDiff is the mean absolute difference per sample between d and img.
func meanDiff(d *directImage, img image.Image) float64 {
	var sum, n float64
	for y := range d.height {
		for x := range d.width {
			r, g, b, _ := img.At(x, y).RGBA()
			want := []uint32{r >> 8, g >> 8, b >> 8}[:d.bands]
			for i, v := range want {
				got := float64(d.pix[(y*d.width+x)*d.bands+i])
				sum += max(got-float64(v), float64(v)-got)
				n++
			}
		}
	}
	return sum / n
}

// What libvips' loader decides stays with it: CMYK, a truncated or
// corrupt file (libvips' own rules fail it or not, as before), and an
// image too large to hold decoded.
func TestDirectDecodeDeclines(t *testing.T) {
	data := encJPEG(t, photoLike(64, 48))
	if d, err := decodeDirect(data, 8, false, 64*48*3, false); d == nil || err != nil {
		t.Fatalf("at max_bytes: %v %v", d, err)
	}
	if d, err := decodeDirect(data, 8, false, 64*48*3-1, false); d != nil || err != nil {
		t.Errorf("over max_bytes: %v %v", d, err)
	}
	if d, err := decodeDirect(data[:len(data)*2/3], 8, false, directMax, false); d != nil || err != nil {
		t.Errorf("truncated: %v %v", d, err)
	}
	// Bytes before a marker: libjpeg warns and goes on.
	i := bytes.Index(data, []byte{0xff, 0xda})
	junk := append(append(append([]byte{}, data[:i]...), 0x12, 0x34), data[i:]...)
	if d, err := decodeDirect(junk, 8, false, directMax, false); d != nil || err != nil {
		t.Errorf("extraneous bytes: %v %v", d, err)
	}
	if _, err := jpeg.Decode(bytes.NewReader(junk)); err != nil {
		t.Fatalf("the junk fixture should decode: %v", err)
	}
	cmyk, srgb := ghostscriptProfile(t, "default_cmyk.icc"), ghostscriptProfile(t, "srgb.icc")
	c, err := bimg.Resize(encPNG(t, fixtures.Solid(32, 32, red)), bimg.Options{InputICC: srgb, OutputICC: cmyk, Type: bimg.JPEG})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := decodeDirect(c, 8, false, directMax, false); d != nil || err != nil {
		t.Errorf("cmyk: %v %v", d, err)
	}
}

// A JPEG's embedded profile comes with its direct decode, so that its
// colours are converted to sRGB as libvips' loader had them.
func TestDirectDecodeICC(t *testing.T) {
	a98, srgb := ghostscriptProfile(t, "a98.icc"), ghostscriptProfile(t, "srgb.icc")
	want := color.RGBA{40, 160, 90, 255}
	tagged, err := bimg.Resize(encPNG(t, fixtures.Solid(64, 64, want)), bimg.Options{InputICC: srgb, OutputICC: a98, Type: bimg.JPEG, Quality: 95})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := decodeDirect(tagged, 4, false, directMax, false); err != nil || d == nil || d.icc {
		t.Fatalf("without icc asked: %v %v", d, err)
	}
	d, err := decodeDirect(tagged, 4, true, directMax, false)
	if err != nil || d == nil || !d.icc || d.width != 32 {
		t.Fatalf("with icc asked: %v %v", d, err)
	}
	e := testEngine(t)
	if near(rgba(decode(t, tagged), 5, 5), want, 10) {
		t.Fatal("fixture not in a98 values")
	}
	// The same colour as libvips' loader gives (strip=false keeps to
	// it), both near the original: JPEG's rounding moves it a little.
	_, ref := process(t, e, tagged, "format=png&strip=false")
	wantPixel(t, ref, 5, 5, want, 8, "libvips' loader")
	for _, q := range []string{"width=32&format=png", "format=png"} {
		_, img := process(t, e, tagged, q)
		wantPixel(t, img, 5, 5, rgba(ref, 5, 5), 1, q+": back to sRGB")
	}
}

// The guard stops a direct decode as it stops libvips: with an error, not
// a decline that would hand the image to libvips' loader for a second try.
func TestDirectDecodeStopsOnTheGuard(t *testing.T) {
	data := encJPEG(t, photoLike(64, 48))
	d, err := decodeDirect(data, 8, false, directMax, true)
	var ve *vipsError
	if d != nil || !errors.As(err, &ve) || ve.text != "imgpipe: killed" {
		t.Fatalf("under a raised guard: %v, %v", d, err)
	}
}
