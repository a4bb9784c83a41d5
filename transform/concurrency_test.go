package transform

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// Several goroutines share one Engine (the transform role runs a worker
// pool): every result is the one its own input asked for.
func TestConcurrentProcess(t *testing.T) {
	e := testEngine(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 8; i++ {
		w := 40 + 10*i
		data := encPNG(t, quadImage(2*w, w))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, f := range []string{"jpeg", "webp", "png"} {
				out, info, err := e.Process(context.Background(), Input{Data: data, Spec: Spec{Width: w, Format: f, Rotate: 90}})
				if err != nil {
					errs <- err
					return
				}
				if info.Width != w/2 || info.Height != w || info.Format != f || sniff(out).String() != f {
					errs <- fmt.Errorf("worker %d %s: %+v", i, f, info)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// libvips runs no ORC code (see ip_startup): with it, a program compiled
// on one thread racing one freed on another corrupted liborc's code
// memory, and the process crashed.
func TestVectorCodeIsOff(t *testing.T) {
	testEngine(t)
	if !vectorIsORC() {
		t.Skip("this libvips vectorises with Highway, not ORC")
	}
	if vectorEnabled() {
		t.Fatal("libvips' ORC code is enabled")
	}
}

// Many workers building resamplers at once, each for other factors, and
// dropping them: the race ORC lost (see ip_startup) is between a program
// compiled as one pipeline is built and another freed as one is closed,
// so the pipelines are built and closed without computing pixels, which
// makes thousands a second. With ORC on, it crashed the test process in
// 1 of 6 runs (glibc: "free(): invalid pointer"), and took twice as long:
// TestVectorCodeIsOff is the check that cannot miss.
func TestConcurrentPipelineBuilds(t *testing.T) {
	e := testEngine(t)
	img := fixtures.JPEG(64, 48, 7)
	src, err := e.inspect(img, false)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 1500 {
				width := 20 + (7*w+i)%40
				j, err := e.plan(Spec{Width: width, Format: "jpeg"}, src)
				if err == nil {
					err = buildOnly(e, img, j)
				}
				if err != nil {
					t.Errorf("worker %d, width %d: %v", w, width, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// buildOnly builds j's decode and resize as a render would, checks the
// size it would produce, and closes it.
func buildOnly(e *Engine, data []byte, j job) error {
	var pin runtime.Pinner
	defer pin.Unpin()
	pin.Pin(&data[0]) // libvips reads the input lazily, as in render
	vc := &vctx{}
	defer vc.close()
	p := &pipe{vc: vc}
	if err := e.decode(p, data, j, nil, true); err != nil {
		return err
	}
	if g := p.geom(); g.width != j.spec.Width || abs(4*g.height-3*g.width) > 4 {
		return fmt.Errorf("pipeline makes %dx%d", g.width, g.height)
	}
	return nil
}

// minimalPDF is one 200x100 pt page filled red on the left, blue on the
// right, with a correct cross-reference table.
func minimalPDF() []byte {
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R >>",
	}
	content := "1 0 0 rg 0 0 100 100 re f 0 0 1 rg 100 0 100 100 re f"
	objs = append(objs, fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
	var b strings.Builder
	b.WriteString("%PDF-1.4\n")
	offs := []int{}
	for i, o := range objs {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return []byte(b.String())
}

func TestPDFInput(t *testing.T) {
	e := testEngine(t, func(c *Config) { c.AllowPDF = true })
	pdf := minimalPDF()
	info, err := e.Probe(pdf)
	if err != nil || info.Format != "pdf" || info.Width != 200 || info.Height != 100 || info.Pages != 1 {
		t.Fatalf("probe %+v %v", info, err)
	}
	out, img := process(t, e, pdf, "width=400&enlarge=1")
	if sniff(out) != fmtPNG || img.Bounds().Dx() != 400 {
		t.Fatalf("pdf -> %s %v", sniff(out), img.Bounds())
	}
	wantPixel(t, img, 50, 50, red, 4, "pdf left")
	wantPixel(t, img, 350, 150, blue, 4, "pdf right")
	_, err = e.Probe(pdf[:len(pdf)-8])
	wantError(t, err, 422, CodeTruncated)
}

// Small outputs still take a watermark (shrunk to fit); animations get it
// on every frame, and contain pads each frame.
func TestWatermarkEdgeCases(t *testing.T) {
	e := testEngine(t)
	_, img := process(t, e, encPNG(t, fixtures.Solid(400, 300, grey)), "width=16&height=16&fit=cover&watermark_text=a+long+watermark+text&format=png")
	if b := img.Bounds(); b.Dx() != 16 || b.Dy() != 16 {
		t.Errorf("tiny %v", b)
	}
	out, info, err := e.Process(context.Background(), Input{Data: animatedGIF(t, 3, 60, 40),
		Spec: spec(t, e, "width=80&height=80&fit=contain&background=ffffff&format=webp&watermark_text=x")})
	if err != nil || info.Pages != 3 || info.Width != 80 || info.Height != 80 {
		t.Fatalf("animated contain: %+v %v", info, err)
	}
	if pi, err := e.Probe(out); err != nil || pi.Pages != 3 || pi.Height != 80 {
		t.Errorf("reprobe %+v %v", pi, err)
	}
}

// Renders on many threads at once share glibc's two arenas (startVips
// limits them, as MALLOC_ARENA_MAX=2 would): with the default, up to
// eight per core, an idle process kept the peak of its busiest moment.
func TestRendersShareTwoMallocArenas(t *testing.T) {
	if os.Getenv("MALLOC_ARENA_MAX") != "" {
		t.Skip("MALLOC_ARENA_MAX is set: the environment decides")
	}
	if mallocArenas() < 0 {
		t.Skip("not glibc's malloc")
	}
	e := testEngine(t)
	req, err := e.ParseRequestString("width=300&format=webp")
	if err != nil {
		t.Fatal(err)
	}
	img := fixtures.JPEG(1200, 900, 4)
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			if _, _, err := e.Process(context.Background(), Input{Data: img, Spec: req.Variants[0].Spec}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := mallocArenas(); n > 2 {
		t.Errorf("%d malloc arenas after 12 renders at once, want at most 2", n)
	}
}
