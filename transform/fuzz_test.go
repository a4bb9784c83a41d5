package transform

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// FuzzParseRequest: no input panics, and whatever parses has a canonical
// form that parses back to itself.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"", "width=300&height=200&fit=cover&gravity=north", "preset=thumb,web&quality=50",
		"variant=a:width=10;height=20&variant=b:preset=thumb|format=png",
		"extract=1,2,3,4&rotate=-90&background=%23abc", "watermark_text=%C2%A9+x%3By&watermark_position=tile",
		"blur=1e1&sharpen=0.5&strip=0", "width=1&width=2", "variant=a:watermark_text=a%253Bb",
		"%zz=1", "variant=:", "variant=a:=;=", "format=heic&lossless=1&progressive=1",
	} {
		f.Add(s)
	}
	e := testEngine(f)
	f.Fuzz(func(t *testing.T, raw string) {
		check := func(req Request, err error) {
			if err != nil {
				if _, ok := AsError(err); !ok {
					t.Fatalf("%q: error %T is not *Error", raw, err)
				}
				return
			}
			c := req.Canonical()
			back, err := ParseCanonical(c)
			if err != nil {
				t.Fatalf("%q: canonical %q does not parse: %v", raw, c, err)
			}
			if back.Canonical() != c {
				t.Fatalf("%q: canonical %q re-parses as %q", raw, c, back.Canonical())
			}
		}
		check(e.ParseRequestString(raw))
		if q, err := url.ParseQuery(raw); err == nil {
			check(e.ParseRequest(q))
		}
		_, _ = ParseCanonical(raw)
	})
}

// FuzzProbe: no byte sequence panics Probe; whatever Probe accepts goes
// through a small decode, which may fail but only with an *Error.
func FuzzProbe(f *testing.F) {
	jpg := encJPEG(f, quadImage(16, 12))
	f.Add(jpg)
	f.Add(fixtures.WithOrientation(jpg, 6))
	f.Add(withEXIF(jpg, buildEXIF([]exifTag{{tag: tagMake, s: "Canon"}}, []exifTag{{tag: tagLensModel, s: "L"}}, []exifTag{{tag: tagGPSLatitude, v: 1}})))
	f.Add(withICC(jpg, iccProfile("P")))
	f.Add(encPNG(f, quadImage(9, 7)))
	f.Add(animatedGIF(f, 3, 8, 8))
	f.Add(pngBomb(f, 300, 200))
	f.Add([]byte("II*\x00\x08\x00\x00\x00\x01\x00\x00\x01\x03\x00\x01\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("RIFF\x10\x00\x00\x00WEBPVP8L\x04\x00\x00\x00\x2f\x00\x00\x00"))
	f.Add([]byte("\x00\x00\x00\x18ftypavif\x00\x00\x00\x00mif1avif\x00\x00\x00\x08meta"))
	f.Add([]byte(`<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>`))
	f.Add([]byte("%PDF-1.4\n%%EOF"))
	e := testEngine(f, func(c *Config) {
		c.AllowSVG = true
		c.MaxInputPixels = 4 << 20
		c.MaxDecodedBytes = 64 << 20
		c.Timeout = 2 * time.Second
	})
	s := Spec{Width: 8, Height: 8, Fit: FitCover, Format: "png"}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := e.Probe(data)
		if err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatalf("probe error %T is not *Error: %v", err, err)
			}
			return
		}
		if info.Width <= 0 || info.Height <= 0 {
			t.Fatalf("probe accepted %dx%d", info.Width, info.Height)
		}
		if sniff(data) == fmtJPEG {
			sameJPEGHeader(t, e, data)
		}
		if _, _, err := e.Process(context.Background(), Input{Data: data, Spec: s}); err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatalf("process error %T is not *Error: %v", err, err)
			}
		}
	})
}

// sameJPEGHeader fails unless Process's reading of a JPEG's header from its
// markers agrees with libvips' (TestJPEGHeaderAgreesWithLibvips).
func sameJPEGHeader(t *testing.T, e *Engine, data []byte) {
	t.Helper()
	got, err := e.inspect(data, false)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	want := inspection{format: fmtJPEG}
	if err := e.readHeader(data, &want, false); err != nil {
		t.Fatalf("libvips' header: %v", err)
	}
	want.info.Size = int64(len(data))
	if got != want {
		t.Fatalf("from the markers %+v\nlibvips read      %+v", got, want)
	}
}
