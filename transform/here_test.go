package transform

import (
	"context"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// Which images a render computes on its own thread: small ones, not large,
// enlarged or animated ones.
func TestComputesHere(t *testing.T) {
	e := testEngine(t)
	for _, c := range []struct {
		name, query string
		data        []byte
		want        bool
	}{
		{"thumbnail", "width=160&height=160&fit=cover&format=jpeg", fixtures.JPEG(640, 480, 1), true},
		{"rotated thumbnail", "width=160&rotate=90&format=png", fixtures.JPEG(640, 480, 1), true},
		{"3 MP kept whole", "format=png", fixtures.JPEG(2000, 1500, 2), true},
		{"4K shrunk on load", "width=800&height=600&fit=inside&format=webp", fixtures.JPEG(3840, 2160, 3), true},
		{"12 MP PNG", "width=100&format=png", fixtures.PNG(4000, 3000, 4, false), false},
		{"enlarged past the memory bound", "width=3000&enlarge=1&format=png", fixtures.PNG(100, 100, 5, true), false},
		{"animation", "width=50&format=gif", fixtures.GIF(80, 60, 3, 6), false},
	} {
		src, err := e.inspect(c.data, false)
		if err != nil {
			t.Fatal(err)
		}
		j, err := e.plan(spec(t, e, c.query), src)
		if err != nil {
			t.Fatal(err)
		}
		g := newGuard(context.Background())
		p := &pipe{vc: &vctx{}}
		if err := e.decode(p, c.data, j, g.g, j.streams()); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := computesHere(j, p); got != c.want {
			t.Errorf("%s (%s): computed here %v, want %v", c.name, c.query, got, c.want)
		}
		p.vc.close()
		g.release()
	}
}

// Computed on the render's own thread or by libvips' workers, an image
// comes out the same, streamed or not, filtered, rotated or watermarked.
// (Strips of other heights can land a resampled pixel on the neighbouring
// Lanczos weights, as in TestStreamedMatchesMaterialised.)
func TestComputedHereMatchesWorkers(t *testing.T) {
	e := testEngine(t)
	inputs := map[string][]byte{
		"jpeg":         fixtures.JPEG(641, 479, 2),
		"jpeg rotated": fixtures.WithOrientation(fixtures.JPEG(300, 200, 3), 6),
		"png alpha":    fixtures.PNG(400, 300, 5, true),
	}
	queries := []string{
		"width=160&height=160&fit=cover&format=jpeg",
		"width=200&height=150&fit=contain&background=ff0000&format=png",
		"width=150&rotate=90&format=png",
		"width=150&blur=2&format=png",
		"width=300&watermark_text=imgpipe&format=png",
		"width=120&height=120&fit=cover&gravity=smart&format=webp",
		"format=png",
	}
	render := func(data []byte, q string) ([]byte, int, int) {
		out, info, err := e.Process(context.Background(), Input{Data: data, Spec: spec(t, e, q)})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return out, info.Width, info.Height
	}
	for name, data := range inputs {
		for _, q := range queries {
			here, w, h := render(data, q)
			saved := hereMaxInputPixels
			hereMaxInputPixels = 0
			workers, ww, wh := render(data, q)
			hereMaxInputPixels = saved
			if w != ww || h != wh {
				t.Fatalf("%s %s: %dx%d here, %dx%d by the workers", name, q, w, h, ww, wh)
			}
			tol := 2
			if strings.Contains(q, "jpeg") || strings.Contains(q, "webp") {
				tol = 6 // the encoder spreads a difference over its block
			}
			a, b := decode(t, here), decode(t, workers)
			n := 0
			for y := range h {
				for x := range w {
					if pa, pb := rgba(a, x, y), rgba(b, x, y); !near(pa, pb, tol) {
						t.Fatalf("%s %s: pixel (%d,%d) %v here, %v by the workers", name, q, x, y, pa, pb)
					} else if pa != pb {
						n++
					}
				}
			}
			if n > w*h/50 {
				t.Errorf("%s %s: %d of %d pixels differ", name, q, n, w*h)
			}
		}
	}
}

// The guard stops a computation on the render's thread between strips,
// and says it fired, as it does a sink's.
func TestComputeHereStopsAtGuard(t *testing.T) {
	e := testEngine(t)
	data := fixtures.JPEG(2000, 1500, 7)
	src, err := e.inspect(data, false)
	if err != nil {
		t.Fatal(err)
	}
	j, err := e.plan(spec(t, e, "blur=3&format=png"), src)
	if err != nil {
		t.Fatal(err)
	}
	for _, stop := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		g := newGuard(ctx)
		p := &pipe{vc: &vctx{}}
		if err := e.decode(p, data, j, g.g, true); err != nil {
			t.Fatal(err)
		}
		if !computesHere(j, p) {
			t.Fatal("a 3 MP image is not computed here")
		}
		if stop {
			cancel()
		}
		err := p.materialize("compute", g.g, true)
		switch {
		case stop && (err == nil || !g.fired()):
			t.Errorf("cancelled: err %v, fired %v", err, g.fired())
		case !stop && (err != nil || g.fired()):
			t.Errorf("not cancelled: err %v, fired %v", err, g.fired())
		case !stop && p.geom().width != 2000:
			t.Errorf("computed %+v", p.geom())
		}
		p.vc.close()
		cancel()
		g.release()
	}
}
