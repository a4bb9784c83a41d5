package transform

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/h2non/bimg"
	"github.com/imgpipe/imgpipe/model"
)

// testEngine returns an engine with the default config changed by opts and
// a logger that records what libvips says.
func testEngine(t testing.TB, opts ...func(*Config)) *Engine {
	t.Helper()
	cfg := DefaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	e, err := New(cfg, slog.New(testLog))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// testLog collects log records of all engines in the test binary.
var testLog = &recorder{}

type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// spec parses a query into the single variant's spec.
func spec(t testing.TB, e *Engine, q string) Spec {
	t.Helper()
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	req, err := e.ParseRequest(v)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if len(req.Variants) != 1 {
		t.Fatalf("%s: %d variants", q, len(req.Variants))
	}
	return req.Variants[0].Spec
}

// process runs one query on data and decodes the result.
func process(t testing.TB, e *Engine, data []byte, q string) ([]byte, image.Image) {
	t.Helper()
	out, info, err := e.Process(context.Background(), Input{Data: data, Spec: spec(t, e, q)})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if info.Size != int64(len(out)) || len(info.SHA256) != 64 {
		t.Fatalf("%s: info %+v for %d bytes", q, info, len(out))
	}
	img := decode(t, out)
	if b := img.Bounds(); b.Dx() != info.Width || b.Dy() != info.Height {
		t.Fatalf("%s: decoded %v, info says %dx%d", q, b, info.Width, info.Height)
	}
	return out, img
}

// decode reads any output: stdlib decoders where Go has them, otherwise
// bimg (libvips' generic loader, not this package's pipeline) to PNG.
func decode(t testing.TB, data []byte) image.Image {
	t.Helper()
	var img image.Image
	var err error
	switch sniff(data) {
	case fmtJPEG:
		img, err = jpeg.Decode(bytes.NewReader(data))
	case fmtPNG:
		img, err = png.Decode(bytes.NewReader(data))
	case fmtGIF:
		img, err = gif.Decode(bytes.NewReader(data))
	default:
		var p []byte
		if p, err = bimg.NewImage(data).Convert(bimg.PNG); err == nil {
			img, err = png.Decode(bytes.NewReader(p))
		}
	}
	if err != nil {
		t.Fatalf("decode %s: %v", sniff(data), err)
	}
	return img
}

func rgba(img image.Image, x, y int) color.RGBA {
	return color.RGBAModel.Convert(img.At(img.Bounds().Min.X+x, img.Bounds().Min.Y+y)).(color.RGBA)
}

// near compares colours within tol per channel (lossy codecs, resampling).
func near(a, b color.RGBA, tol int) bool {
	d := func(x, y uint8) bool { return abs(int(x)-int(y)) <= tol }
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B) && d(a.A, b.A)
}

func wantPixel(t testing.TB, img image.Image, x, y int, want color.RGBA, tol int, what string) {
	t.Helper()
	if got := rgba(img, x, y); !near(got, want, tol) {
		t.Errorf("%s: pixel (%d,%d) = %v, want %v", what, x, y, got, want)
	}
}

func wantError(t testing.TB, err error, status int, code string) *Error {
	t.Helper()
	e, ok := AsError(err)
	if !ok {
		t.Fatalf("error %v (%T) is not *Error", err, err)
	}
	if e.Status != status || (code != "" && e.Code != code) {
		t.Fatalf("error %q: status %d code %s, want %d %s", e.Message, e.Status, e.Code, status, code)
	}
	return e
}

var _ = io.EOF

func mInfo(w, h, o int) model.Info { return model.Info{Width: w, Height: h, Orientation: o} }

// ghostscriptProfile is the path of one of Ghostscript's ICC profiles; the
// test is skipped on a machine without them (Debian's ghostscript ships
// them).
func ghostscriptProfile(t testing.TB, name string) string {
	t.Helper()
	p := "/usr/share/color/icc/ghostscript/" + name
	if _, err := os.Stat(p); err != nil {
		t.Skip("no ICC profiles on this machine (Debian's ghostscript ships them)")
	}
	return p
}
