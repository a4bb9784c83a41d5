package transform

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// Which jobs run lazily from the loader to the encoder.
func TestStreams(t *testing.T) {
	e := testEngine(t)
	jpg := encJPEG(t, photoLike(120, 80))
	for q, want := range map[string]bool{
		"width=60&height=60&fit=cover&format=jpeg":  true,
		"width=60&height=60&fit=contain&format=png": true,
		"width=60&fit=inside&grayscale=1":           true,
		"extract=10,10,50,50&width=20&format=webp":  true,
		"format=png": true,
		"width=60&height=60&fit=cover&gravity=smart": false,
		"width=60&rotate=90":                         false,
		"width=60&flip=1":                            false,
		"width=60&blur=1":                            false,
		"width=60&sharpen=1":                         false,
		"width=60&watermark_text=x":                  false,
	} {
		src, err := e.inspect(jpg, false)
		if err != nil {
			t.Fatal(err)
		}
		j, err := e.plan(spec(t, e, q), src)
		if err != nil {
			t.Fatal(err)
		}
		if got := j.streams(); got != want {
			t.Errorf("%s: streams %v, want %v", q, got, want)
		}
	}
	for o, want := range map[int]bool{1: true, 2: true, 3: false, 6: false, 8: false} {
		src, err := e.inspect(fixtures.WithOrientation(jpg, o), false)
		if err != nil {
			t.Fatal(err)
		}
		j, err := e.plan(spec(t, e, "width=60"), src)
		if err != nil {
			t.Fatal(err)
		}
		if got := j.streams(); got != want {
			t.Errorf("orientation %d: streams %v, want %v", o, got, want)
		}
	}
}

// A streamed job gives what the same job materialised after the resize
// gives. Lanczos weights are picked from a table by a position summed
// from the left edge of the region asked for, so a crop asked of the
// lazy resize can land a pixel on the neighbouring weights: a level or
// two, rarely.
func TestStreamedMatchesMaterialised(t *testing.T) {
	e := testEngine(t)
	inputs := map[string][]byte{
		"jpeg":          fixtures.JPEG(1077, 683, 1),
		"jpeg odd":      fixtures.JPEG(641, 479, 2),
		"jpeg mirrored": fixtures.WithOrientation(fixtures.JPEG(300, 200, 3), 2),
		"grey jpeg":     encJPEG(t, greyPhoto(320, 240)),
		"png":           fixtures.PNG(400, 300, 4, false),
		"png alpha":     fixtures.PNG(400, 300, 5, true),
	}
	queries := []string{
		"width=160&height=160&fit=cover",
		"width=160&height=160&fit=cover&gravity=southeast",
		"width=200&height=150&fit=inside",
		"width=333&height=222&fit=contain&background=ff0000",
		"width=120&height=90&fit=contain",
		"width=300&height=100&fit=fill",
		"height=77&grayscale=1",
		"width=900&enlarge=1",
		"extract=10,20,250,170&width=150",
		"width=64&flop=1",
		"",
	}
	for name, data := range inputs {
		src, err := e.inspect(data, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range queries {
			for _, f := range []string{"png", "jpeg"} {
				query := strings.TrimPrefix(q+"&format="+f, "&")
				j, err := e.plan(spec(t, e, query), src)
				if err != nil {
					t.Fatal(err)
				}
				if !j.streams() {
					t.Fatalf("%s: does not stream", query)
				}
				a, ai, err := e.render(context.Background(), data, j, nil, true)
				if err != nil {
					t.Fatalf("%s %s streamed: %v", name, query, err)
				}
				b, bi, err := e.render(context.Background(), data, j, nil, false)
				if err != nil {
					t.Fatalf("%s %s materialised: %v", name, query, err)
				}
				if ai.Width != bi.Width || ai.Height != bi.Height || ai.Format != bi.Format {
					t.Errorf("%s %s: streamed %+v, materialised %+v", name, query, ai, bi)
					continue
				}
				if bytes.Equal(a, b) {
					continue
				}
				tol, most := 2, 1.0/500
				if f == "jpeg" { // the encoder spreads a difference over its block
					tol, most = 6, 1.0/50
				}
				ia, ib := decode(t, a), decode(t, b)
				n := 0
				for y := 0; y < bi.Height; y++ {
					for x := 0; x < bi.Width; x++ {
						if pa, pb := rgba(ia, x, y), rgba(ib, x, y); !near(pa, pb, tol) {
							t.Fatalf("%s %s: pixel (%d,%d) streamed %v, materialised %v", name, query, x, y, pa, pb)
						} else if pa != pb {
							n++
						}
					}
				}
				if float64(n) > most*float64(bi.Width*bi.Height) {
					t.Errorf("%s %s: %d of %d pixels differ", name, query, n, bi.Width*bi.Height)
				}
			}
		}
	}
}

func greyPhoto(w, h int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	src := photoLike(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := src.RGBAAt(x, y)
			img.SetGray(x, y, color.Gray{Y: uint8((int(c.R) + int(c.G) + int(c.B)) / 3)})
		}
	}
	return img
}

// A streamed job is computed by the encoder, under the timeout all the
// same: a full-size 3000x2000 decode to PNG stops at the limit. The
// timeout is a quarter of the quickest job's time: the JPEG cover, decoded
// at 6/8 straight into memory, takes about 40 ms, and at a 40 ms timeout
// it finished in time now and then.
func TestStreamedTimeout(t *testing.T) {
	e := testEngine(t, func(c *Config) { c.Timeout = 10 * time.Millisecond })
	big := encJPEG(t, photoLike(3000, 2000))
	for _, q := range []string{"format=png", "width=2900&format=webp", "width=1500&height=1500&fit=cover&format=jpeg"} {
		s := spec(t, e, q)
		start := time.Now()
		_, _, err := e.Process(context.Background(), Input{Data: big, Spec: s})
		took := time.Since(start)
		pe := wantError(t, err, http.StatusGatewayTimeout, CodeTimeout)
		if pe.Permanent() {
			t.Errorf("%s: timeout marked permanent", q)
		}
		if took > 2*time.Second {
			t.Errorf("%s: timeout returned after %v", q, took)
		}
	}
	// With the operation cache on, the guard goes on an image of its own.
	cached := testEngine(t, func(c *Config) { c.VipsCacheMaxOps = 50; c.Timeout = 40 * time.Millisecond })
	defer testEngine(t) // the cache setting is process-wide: back to the default
	_, _, err := cached.Process(context.Background(), Input{Data: big, Spec: spec(t, cached, "format=png")})
	wantError(t, err, http.StatusGatewayTimeout, CodeTimeout)
	small := encJPEG(t, photoLike(64, 48))
	for range 2 {
		if _, info, err := cached.Process(context.Background(), Input{Data: small, Spec: spec(t, cached, "width=32&format=png")}); err != nil || info.Width != 32 {
			t.Fatalf("cached: %+v %v", info, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	e2 := testEngine(t)
	_, _, err = e2.Process(ctx, Input{Data: big, Spec: spec(t, e2, "format=png")})
	wantError(t, err, http.StatusServiceUnavailable, CodeCanceled)
}

// Streamed, a decoding failure surfaces in the encoder; the error still
// names the decode, as when the decode was materialised on its own.
func TestStreamedDecodeFailureNamesDecode(t *testing.T) {
	e := testEngine(t)
	jpg := encJPEG(t, photoLike(400, 300))
	// Without its quantisation tables the header still reads (libjpeg
	// latches them when decoding starts): Probe accepts it, decoding fails.
	dqt := bytes.Index(jpg, []byte{0xFF, 0xDB})
	n := int(jpg[dqt+2])<<8 | int(jpg[dqt+3])
	cut := append(append([]byte{}, jpg[:dqt]...), jpg[dqt+2+n:]...)
	if bytes.Contains(cut, []byte{0xFF, 0xDB}) {
		t.Fatal("more than one DQT segment")
	}
	if _, err := e.Probe(cut); err != nil {
		t.Fatalf("probe: %v", err)
	}
	for _, q := range []string{"width=100&format=png", "width=50&height=50&fit=cover&format=jpeg", "format=webp"} {
		_, _, err := e.Process(context.Background(), Input{Data: cut, Spec: spec(t, e, q)})
		pe := wantError(t, err, http.StatusUnprocessableEntity, CodeUndecodable)
		if pe.Message != "the jpeg image could not be decoded" {
			t.Errorf("%s: message %q", q, pe.Message)
		}
	}
}
