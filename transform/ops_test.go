package transform

import (
	"fmt"
	"image"
	"image/color"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// stripes is w x h with three equal stripes, red-green-blue, across (wide)
// or down (tall): which stripe survives a crop shows the gravity.
func stripes(w, h int, across bool) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	cols := []color.RGBA{red, green, blue}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := 3 * y / h
			if across {
				i = 3 * x / w
			}
			img.SetRGBA(x, y, cols[i])
		}
	}
	return img
}

type px struct {
	x, y int
	c    color.RGBA
}

// One table for the geometric operations; input is lossless PNG so colours
// are exact away from edges (resampling blurs a pixel or two).
func TestOperations(t *testing.T) {
	e := testEngine(t)
	quad := encPNG(t, quadImage(200, 100))
	wide := encPNG(t, stripes(300, 100, true))
	tall := encPNG(t, stripes(100, 300, false))
	cases := []struct {
		name string
		in   []byte
		q    string
		w, h int
		px   []px
	}{
		{"inside width", quad, "width=100", 100, 50, []px{{10, 10, red}, {90, 40, yellow}}},
		{"inside box", quad, "width=100&height=100", 100, 50, []px{{90, 10, green}, {10, 40, blue}}},
		{"inside never enlarges", quad, "width=400", 200, 100, nil},
		{"inside enlarge", quad, "width=400&enlarge=1", 400, 200, []px{{390, 190, yellow}}},
		{"height only", quad, "height=50", 100, 50, []px{{10, 40, blue}}},
		{"fill stretches", quad, "width=100&height=100&fit=fill", 100, 100, []px{{10, 10, red}, {90, 90, yellow}, {90, 10, green}}},
		{"cover center", wide, "width=100&height=100&fit=cover", 100, 100, []px{{50, 50, green}}},
		{"cover west", wide, "width=100&height=100&fit=cover&gravity=west", 100, 100, []px{{50, 50, red}, {95, 50, red}}},
		{"cover east", wide, "width=100&height=100&fit=cover&gravity=east", 100, 100, []px{{5, 50, blue}}},
		{"cover north", tall, "width=100&height=100&fit=cover&gravity=north", 100, 100, []px{{50, 95, red}}},
		{"cover south", tall, "width=100&height=100&fit=cover&gravity=south", 100, 100, []px{{50, 5, blue}}},
		{"northeast wide", wide, "width=100&height=100&fit=cover&gravity=northeast", 100, 100, []px{{50, 50, blue}}},
		{"northeast tall", tall, "width=100&height=100&fit=cover&gravity=northeast", 100, 100, []px{{50, 50, red}}},
		{"northwest wide", wide, "width=100&height=100&fit=cover&gravity=northwest", 100, 100, []px{{50, 50, red}}},
		{"southwest tall", tall, "width=100&height=100&fit=cover&gravity=southwest", 100, 100, []px{{50, 50, blue}}},
		{"southeast wide", wide, "width=100&height=100&fit=cover&gravity=southeast", 100, 100, []px{{50, 50, blue}}},
		{"southeast tall", tall, "width=100&height=100&fit=cover&gravity=southeast", 100, 100, []px{{50, 50, blue}}},
		{"cover scales then crops", wide, "width=50&height=50&fit=cover&gravity=east", 50, 50, []px{{25, 25, blue}}},
		{"cover enlarges", quad, "width=400&height=400&fit=cover&gravity=west", 400, 400, []px{{10, 10, red}, {390, 390, blue}}},
		{"contain pads transparent", quad, "width=100&height=100&fit=contain&format=png", 100, 100,
			[]px{{50, 5, color.RGBA{}}, {10, 30, red}, {90, 70, yellow}}},
		{"contain pads colour", quad, "width=100&height=100&fit=contain&background=00ff00&format=png", 100, 100,
			[]px{{50, 5, green}, {50, 95, green}, {10, 30, red}}},
		{"contain white for jpeg", quad, "width=100&height=100&fit=contain&format=jpeg", 100, 100, []px{{50, 5, white}}},
		{"extract", quad, "extract=100,0,100,50", 100, 50, []px{{5, 5, green}, {95, 45, green}}},
		{"extract then resize", quad, "extract=0,50,100,50&width=50", 50, 25, []px{{25, 12, blue}}},
		{"extract then cover", wide, "extract=100,0,200,100&width=50&height=50&fit=cover&gravity=west", 50, 50, []px{{25, 25, green}}},
		{"rotate 90", quad, "rotate=90", 100, 200, []px{{10, 10, blue}, {90, 10, red}, {10, 190, yellow}, {90, 190, green}}},
		{"rotate 180", quad, "rotate=180", 200, 100, []px{{10, 10, yellow}, {190, 90, red}}},
		{"rotate 270", quad, "rotate=270", 100, 200, []px{{10, 10, green}, {90, 190, blue}}},
		{"rotate after resize", quad, "width=100&rotate=90", 50, 100, []px{{5, 5, blue}}},
		{"flip", quad, "flip=1", 200, 100, []px{{10, 10, blue}, {190, 10, yellow}}},
		{"flop", quad, "flop=1", 200, 100, []px{{10, 10, green}, {10, 90, yellow}}},
		{"flip flop", quad, "flip=1&flop=1", 200, 100, []px{{10, 10, yellow}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, img := process(t, e, c.in, c.q)
			if b := img.Bounds(); b.Dx() != c.w || b.Dy() != c.h {
				t.Fatalf("%s: %dx%d, want %dx%d", c.q, b.Dx(), b.Dy(), c.w, c.h)
			}
			tol := 8
			if strings.Contains(c.q, "format=jpeg") {
				tol = 30
			}
			for _, p := range c.px {
				wantPixel(t, img, p.x, p.y, p.c, tol, c.q)
			}
		})
	}
}

func TestSmartCrop(t *testing.T) {
	e := testEngine(t)
	// Flat grey on the left two thirds, busy saturated noise on the right.
	img := fixtures.Solid(300, 100, color.RGBA{128, 128, 128, 255})
	noisy := photoLike(100, 100)
	for y := 0; y < 100; y++ {
		for x := 0; x < 100; x++ {
			c := noisy.RGBAAt(x, y)
			c.R, c.B = 255-c.R, c.G
			img.SetRGBA(200+x, y, c)
		}
	}
	data := encPNG(t, img)
	for _, g := range []string{"smart", "entropy"} {
		_, out := process(t, e, data, "width=100&height=100&fit=cover&gravity="+g)
		if c := rgba(out, 80, 50); near(c, color.RGBA{128, 128, 128, 255}, 4) {
			t.Errorf("%s: kept the flat part", g)
		}
	}
}

func TestFilters(t *testing.T) {
	e := testEngine(t)
	quad := encPNG(t, quadImage(200, 100))

	_, plain := process(t, e, quad, "format=png")
	_, blurred := process(t, e, quad, "blur=5&format=png")
	if c := rgba(plain, 99, 25); !(c == red || c == green) {
		t.Fatalf("edge pixel unexpectedly mixed: %v", c)
	}
	if c := rgba(blurred, 99, 25); c.R < 60 || c.G < 60 {
		t.Errorf("blur left the edge sharp: %v", c)
	}
	wantPixel(t, blurred, 20, 20, red, 4, "blur keeps flat areas")

	photo := encPNG(t, photoLike(120, 80))
	a, _ := process(t, e, photo, "format=png")
	b, sharp := process(t, e, photo, "sharpen=2&format=png")
	if string(a) == string(b) {
		t.Error("sharpen changed nothing")
	}
	if sharp.Bounds().Dx() != 120 {
		t.Errorf("sharpen size %v", sharp.Bounds())
	}

	for _, f := range []string{"jpeg", "png", "webp"} {
		_, g := process(t, e, quad, "grayscale=1&format="+f)
		for _, p := range []image.Point{{10, 10}, {150, 10}, {10, 90}, {150, 90}} {
			c := rgba(g, p.X, p.Y)
			if c.R != c.G || c.G != c.B {
				t.Errorf("grayscale %s: %v at %v", f, c, p)
			}
		}
		if c := rgba(g, 150, 90); c.R < 150 { // yellow is light
			t.Errorf("grayscale %s: yellow became %v", f, c)
		}
	}
}

// Alpha is flattened onto the background only where the output has no
// alpha channel.
func TestBackgroundFlatten(t *testing.T) {
	e := testEngine(t)
	img := image.NewNRGBA(image.Rect(0, 0, 100, 50))
	for y := 0; y < 50; y++ {
		for x := 50; x < 100; x++ {
			img.Set(x, y, color.NRGBA{0, 0, 255, 255})
		}
	}
	data := encPNG(t, img)
	_, out := process(t, e, data, "format=jpeg&background=%23ff0000")
	wantPixel(t, out, 10, 25, red, 12, "flattened onto red")
	wantPixel(t, out, 90, 25, blue, 12, "opaque stays")
	_, out = process(t, e, data, "format=jpeg")
	wantPixel(t, out, 10, 25, white, 6, "default white")
	_, out = process(t, e, data, "format=png&background=ff0000")
	if c := rgba(out, 10, 25); c.A != 0 {
		t.Errorf("png kept alpha? %v", c)
	}
	_, out = process(t, e, data, "format=jpeg&background=0f0&grayscale=1")
	if c := rgba(out, 10, 25); c.R != c.G || c.G != c.B || c.R < 100 {
		t.Errorf("grey flatten %v", c)
	}
}

// Extract before a large reduction loads the JPEG scaled down (1/8 for a
// width of 40, 3/8 for 260); the region is still the right one, also on an
// image stored on its side.
func TestExtractWithShrinkOnLoad(t *testing.T) {
	e := testEngine(t)
	for factor, want := range map[float64]int{20: 1, 8: 1, 4: 2, 3: 3, 2: 4, 1.9: 5, 1.2: 7, 1: 8, 0.5: 8} {
		if got := jpegScale(factor); got != want {
			t.Errorf("jpegScale(%v) = %d/8, want %d/8", factor, got, want)
		}
	}
	for eighths, want := range map[int]int{1: 8, 2: 4, 3: 2, 4: 2, 5: 1, 8: 1} {
		if got := vipsShrink(eighths); got != want {
			t.Errorf("vipsShrink(%d) = %d, want %d", eighths, got, want)
		}
	}
	up := quadImage(1600, 800)
	for _, o := range []int{1, 6} {
		for _, w := range []int{40, 260} {
			data := fixtures.WithOrientation(encJPEG(t, storedFor(up, o)), o)
			_, img := process(t, e, data, fmt.Sprintf("extract=800,0,800,400&width=%d&format=png", w))
			if b := img.Bounds(); b.Dx() != w || b.Dy() != w/2 {
				t.Fatalf("o=%d width=%d: %v", o, w, b)
			}
			for _, f := range [][2]float64{{0.05, 0.1}, {0.92, 0.1}, {0.05, 0.85}, {0.92, 0.85}, {0.5, 0.5}} {
				wantPixel(t, img, int(f[0]*float64(w)), int(f[1]*float64(w/2)), green, 30, "scaled extract")
			}
		}
	}
}
