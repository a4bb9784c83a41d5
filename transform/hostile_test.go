package transform

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/fixtures"
)

func maxRSS(t testing.TB) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Maxrss << 10 // KiB on Linux
}

// A 30000x30000 PNG of under 1 MB is refused from its header: fast and
// without the 900 MB a decode would take.
func TestPixelBombRefusedBeforeDecoding(t *testing.T) {
	e := testEngine(t)
	bomb := pngBomb(t, 30000, 30000)
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	rss := maxRSS(t)
	start := time.Now()
	_, err := e.Probe(bomb)
	took := time.Since(start)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	pe := wantError(t, err, http.StatusUnprocessableEntity, CodeTooLarge)
	if !strings.Contains(pe.Message, "30000x30000") {
		t.Errorf("message %q", pe.Message)
	}
	if took > 50*time.Millisecond {
		t.Errorf("refusal took %v", took)
	}
	if grew := maxRSS(t) - rss; grew > 32<<20 {
		t.Errorf("peak RSS grew by %d MiB", grew>>20)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("Go allocated %d KiB", alloc>>10)
	}
	_, _, err = e.Process(context.Background(), Input{Data: bomb})
	wantError(t, err, http.StatusUnprocessableEntity, CodeTooLarge)

	// It is a real PNG: with the limits lifted the header reads fine...
	lax := testEngine(t, func(c *Config) { c.MaxInputPixels = 1e9; c.MaxDecodedBytes = 1 << 40 })
	if info, err := lax.Probe(bomb); err != nil || info.Width != 30000 || info.Height != 30000 {
		t.Fatalf("lax probe: %+v %v", info, err)
	}
	// ...and the same generator's smaller bomb decodes to zeros.
	small := pngBomb(t, 3000, 2000)
	img, err := png.Decode(bytes.NewReader(small))
	if err != nil || img.Bounds().Dx() != 3000 || img.Bounds().Dy() != 2000 {
		t.Fatalf("small bomb: %v %v", img.Bounds(), err)
	}
}

func TestHostileInputs(t *testing.T) {
	e := testEngine(t, func(c *Config) { c.MaxFrames = 5 })
	jpg := encJPEG(t, photoLike(200, 150))
	pngb := encPNG(t, quadImage(50, 40))
	gifb := animatedGIF(t, 3, 20, 20)
	webp, _, err := e.Process(context.Background(), Input{Data: jpg, Spec: Spec{Format: "webp"}})
	if err != nil {
		t.Fatal(err)
	}
	zeroSOF := append([]byte{}, jpg...)
	if i := bytes.Index(zeroSOF, []byte{0xFF, 0xC0}); i > 0 {
		zeroSOF[i+7], zeroSOF[i+8] = 0, 0 // height 0
	}
	cases := []struct {
		name   string
		data   []byte
		status int
		code   string
	}{
		{"empty", nil, 400, CodeEmptyBody},
		{"text", []byte("hello, this is not an image\n"), 415, CodeUnsupportedType},
		{"html", []byte("<html><body>hi</body></html>"), 415, CodeUnsupportedType},
		{"binary noise", bytes.Repeat([]byte{0x13, 0x37, 0x00, 0xAB}, 64), 415, CodeUnsupportedType},
		{"jpeg cut", jpg[:len(jpg)*6/10], 422, CodeTruncated},
		{"jpeg header only", jpg[:20], 422, CodeTruncated},
		{"jpeg zero height", zeroSOF, 422, CodeCorrupt},
		{"png no IEND", pngb[:len(pngb)-12], 422, CodeTruncated},
		{"png cut in IDAT", pngb[:len(pngb)/2], 422, CodeTruncated},
		{"gif no trailer", gifb[:len(gifb)-1], 422, CodeTruncated},
		{"gif cut", gifb[:len(gifb)/2], 422, CodeTruncated},
		{"webp cut", webp[:len(webp)-10], 422, CodeTruncated},
		{"too many frames", animatedGIF(t, 6, 10, 10), 422, CodeTooManyFrames},
		{"tiff header only", []byte("II*\x00\x08\x00\x00\x00"), 422, CodeTruncated},
	}
	for _, c := range cases {
		_, err := e.Probe(c.data)
		if err == nil {
			t.Errorf("%s: probe accepted", c.name)
			continue
		}
		pe := wantError(t, err, c.status, c.code)
		if !pe.Permanent() {
			t.Errorf("%s: not permanent", c.name)
		}
		if c.data != nil {
			_, _, err = e.Process(context.Background(), Input{Data: c.data})
			wantError(t, err, c.status, c.code)
		}
	}
}

// A damaged EXIF block does not stop the image: the summary is what could
// be read, and processing goes on.
func TestCorruptEXIF(t *testing.T) {
	e := testEngine(t)
	base := encJPEG(t, quadImage(64, 48))
	blocks := map[string][]byte{
		"ifd past end": []byte("II*\x00\xff\xff\x00\x00"),
		"garbage":      bytes.Repeat([]byte{0xA5}, 40),
		"string past end": func() []byte {
			b := buildEXIF([]exifTag{{tag: tagMake, s: "Nikon Corporation"}}, nil, nil)
			b[8+2+8] = 0xF0 // string offset far away
			return b
		}(),
		"sub ifd loop": func() []byte {
			b := buildEXIF([]exifTag{{tag: tagMake, s: "X"}}, []exifTag{{tag: tagLensModel, s: "L"}}, nil)
			return b
		}(),
	}
	for name, blk := range blocks {
		data := withEXIF(base, blk)
		info, err := e.Probe(data)
		if err != nil {
			t.Errorf("%s: probe: %v", name, err)
			continue
		}
		if info.Width != 64 || info.Orientation != 1 {
			t.Errorf("%s: %+v", name, info)
		}
		_, img := process(t, e, data, "width=32&format=png")
		wantPixel(t, img, 4, 4, red, 20, name)
	}
}

func TestSVGSanitising(t *testing.T) {
	off := testEngine(t)
	on := testEngine(t, func(c *Config) { c.AllowSVG = true })
	head := `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">`
	bad := map[string]string{
		"script":         head + `<script>alert(1)</script></svg>`,
		"SCRIPT":         head + `<SCRIPT>alert(1)</SCRIPT></svg>`,
		"onload":         `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)" width="10" height="10"/>`,
		"onclick nested": head + `<rect onclick="x()" width="1" height="1"/></svg>`,
		"http href":      head + `<image href="http://evil.example/x.png" width="1" height="1"/></svg>`,
		"xlink file":     head + `<image xlink:href="file:///etc/passwd" width="1" height="1"/></svg>`,
		"relative href":  head + `<image xlink:href="../secret.png" width="1" height="1"/></svg>`,
		"entity-encoded": head + `<image href="&#104;ttp://evil.example/x.png" width="1" height="1"/></svg>`,
		"svg data uri":   head + `<image href="data:image/svg+xml;base64,PHN2Zz4=" width="1" height="1"/></svg>`,
		"javascript":     head + `<a href="javascript:alert(1)"><rect width="1" height="1"/></a></svg>`,
		"foreignObject":  head + `<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject></svg>`,
		"entity":         `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]>` + head + `&a;</svg>`,
		"css import":     head + `<style>@import url(http://evil.example/a.css);</style></svg>`,
		"css url":        head + `<rect style="fill:url(http://evil.example/p.svg#x)" width="1" height="1"/></svg>`,
		"attr url":       head + `<rect filter="url(file:///x.svg#f)" width="1" height="1"/></svg>`,
		"xml-stylesheet": `<?xml-stylesheet href="http://evil.example/s.css"?>` + head + `</svg>`,
		"malformed":      head + `<rect></svg>`,
		"iframe":         head + `<iframe src="http://x"/></svg>`,
	}
	for name, s := range bad {
		_, err := off.Probe([]byte(s))
		wantError(t, err, http.StatusUnsupportedMediaType, CodeUnsupportedType)
		_, err = on.Probe([]byte(s))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		pe := wantError(t, err, http.StatusUnprocessableEntity, CodeUnsafeSVG)
		if !strings.HasPrefix(pe.Message, "SVG refused: ") {
			t.Errorf("%s: message %q", name, pe.Message)
		}
	}
	good := []string{
		head + `<rect width="10" height="10" fill="url(#g)"/><defs><linearGradient id="g"/></defs></svg>`,
		`<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">` + head + `<use xlink:href="#r"/><rect id="r" width="1" height="1"/></svg>`,
		head + `<image href="data:image/png;base64,iVBORw0KGgo=" width="1" height="1"/><style>rect{fill:red}</style></svg>`,
	}
	for i, s := range good {
		if err := checkSVG([]byte(s)); err != nil {
			t.Errorf("good %d refused: %v", i, err)
		}
	}
}

// libvips' warnings reach slog, not stderr: a JPEG with damaged entropy
// data (structure intact) makes libjpeg complain while decoding.
func TestVipsWarningsGoToLog(t *testing.T) {
	e := testEngine(t)
	jpg := encJPEG(t, photoLike(256, 256))
	sos := bytes.Index(jpg, []byte{0xFF, 0xDA})
	for i := sos + 200; i < len(jpg)-400; i += 7 {
		jpg[i] = 0x5A
	}
	captured := captureStderr(t, func() {
		_, _, err := e.Process(context.Background(), Input{Data: jpg, Spec: Spec{Width: 64, Format: "png"}})
		if err != nil {
			t.Logf("outcome: %v", err) // either decoded with warnings or a clean 422
		}
	})
	if captured != "" {
		t.Errorf("stderr got %q", captured)
	}
	if !testLog.contains("Corrupt JPEG data") {
		t.Errorf("no libvips warning logged: %v", testLog.msgs)
	}
}

// captureStderr redirects file descriptor 2 (where C code writes) around fn.
func captureStderr(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Dup2(int(w.Fd()), 2)
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		b.ReadFrom(r)
		done <- b.String()
	}()
	fn()
	syscall.Dup2(saved, 2)
	syscall.Close(saved)
	w.Close()
	return <-done
}

// Junk between JPEG segments is tolerated, as libjpeg tolerates it.
func TestJPEGJunkBetweenSegments(t *testing.T) {
	e := testEngine(t)
	jpg := encJPEG(t, quadImage(40, 40))
	end := 4 + int(jpg[4])<<8 + int(jpg[5]) // after the first segment (APP0)
	junk := append(append(append([]byte{}, jpg[:end]...), 0x00, 0x11, 0x22), jpg[end:]...)
	if _, err := e.Probe(junk); err != nil {
		t.Fatal(err)
	}
	_, img := process(t, e, junk, "format=png")
	wantPixel(t, img, 5, 5, red, 30, "junk jpeg")
}

// A progressive JPEG is read scan by scan, each a pass over the whole
// image inside one libjpeg call: 12,000 scans of empty refinements in
// 1.9 MB kept a core busy for minutes past the timeout. Scans are counted
// from the markers and too many refused at the probe; an encoder's own
// progressive JPEG passes.
func TestJPEGWithTooManyScansRefused(t *testing.T) {
	e := testEngine(t)
	req, err := e.ParseRequestString("format=jpeg&progressive=true")
	if err != nil {
		t.Fatal(err)
	}
	prog, _, err := e.Process(context.Background(), Input{Data: fixtures.JPEG(64, 48, 5), Spec: req.Variants[0].Spec})
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(prog, []byte{0xFF, 0xDA}); n < 2 {
		t.Fatalf("libvips' progressive JPEG has %d scans", n)
	}
	if _, err := e.Probe(prog); err != nil {
		t.Fatalf("a progressive JPEG: %v", err)
	}
	// Its last scan, again and again before the end.
	eoi := len(prog) - 2
	last := prog[bytes.LastIndex(prog, []byte{0xFF, 0xDA}):eoi]
	hostile := append(append(bytes.Clone(prog[:eoi]), bytes.Repeat(last, maxScans)...), 0xFF, 0xD9)
	start := time.Now()
	_, err = e.Probe(hostile)
	if pe := wantError(t, err, http.StatusUnprocessableEntity, CodeTooLarge); !strings.Contains(pe.Message, "scans, the limit is 200") {
		t.Errorf("message %q", pe.Message)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("refusal took %v", took)
	}
	_, _, err = e.Process(context.Background(), Input{Data: hostile})
	wantError(t, err, http.StatusUnprocessableEntity, CodeTooLarge)
	// What follows the end of the image is not its scans: a phone's motion
	// video or a gain map after a JPEG (here, scan markers) is not read.
	after := append(bytes.Clone(prog), bytes.Repeat([]byte{0xFF, 0xDA, 0x00, 0x01}, 2*maxScans)...)
	if _, err := e.Probe(after); err != nil {
		t.Errorf("a JPEG with data after its end: %v", err)
	}
}

// exifIFD0 is an EXIF block (TIFF, little-endian) whose IFD0 holds the
// orientation and then each of pointers (tag, offset) in turn.
func exifIFD0(pointers ...[2]uint32) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("II")
	_ = binary.Write(&b, le, uint16(42))
	_ = binary.Write(&b, le, uint32(8))
	_ = binary.Write(&b, le, uint16(1+len(pointers)))
	_ = binary.Write(&b, le, [6]uint16{0x0112, 3, 1, 0, 1, 0}) // orientation 1
	for _, p := range pointers {
		_ = binary.Write(&b, le, uint16(p[0]))
		_ = binary.Write(&b, le, uint16(4)) // LONG
		_ = binary.Write(&b, le, uint32(1))
		_ = binary.Write(&b, le, p[1])
	}
	_ = binary.Write(&b, le, uint32(0))
	return b.Bytes()
}

// withAPP1 puts an EXIF block right after a JPEG's SOI.
func withAPP1(jpg, tiff []byte) []byte {
	payload := append([]byte("Exif\x00\x00"), tiff...)
	out := append([]byte{0xFF, 0xD8, 0xFF, 0xE1}, byte((len(payload)+2)>>8), byte(len(payload)+2))
	return append(append(out, payload...), jpg[2:]...)
}

// An EXIF block whose pointers lead back into itself made libexif parse
// IFD0 once per pointer: 8,000 of them cost 3.4 s a parse, on the upload's
// request. Refused from the structure, before libvips reads the header; a
// block that points at a real sub-directory once passes.
func TestEXIFPointerLoopsRefused(t *testing.T) {
	e := testEngine(t)
	jpg := fixtures.JPEG(40, 30, 9)
	const exifIFD, gpsIFD = 0x8769, 0x8825
	// IFD0 is at 8; with two entries it ends at 8+2+24+4 = 38.
	ok := exifIFD0([2]uint32{exifIFD, 38})
	ok = append(ok, 0, 0, 0, 0, 0, 0) // an empty sub-directory at 38
	if _, err := e.Probe(withAPP1(jpg, ok)); err != nil {
		t.Fatalf("a block with one sub-directory: %v", err)
	}
	// Pointers that lead nowhere are libexif's to ignore, not a refusal.
	if _, err := e.Probe(withAPP1(jpg, exifIFD0([2]uint32{gpsIFD, 0}, [2]uint32{exifIFD, 0}))); err != nil {
		t.Errorf("pointers of 0: %v", err)
	}
	if _, err := e.Probe(withAPP1(jpg, exifIFD0([2]uint32{gpsIFD, 1 << 30}))); err != nil {
		t.Errorf("a pointer past the end: %v", err)
	}
	loop := make([][2]uint32, 8000)
	for i := range loop {
		loop[i] = [2]uint32{exifIFD, 8}
	}
	for name, data := range map[string][]byte{
		"jpeg, 8000 pointers back to IFD0": withAPP1(jpg, exifIFD0(loop...)),
		"jpeg, one pointer back to IFD0":   withAPP1(jpg, exifIFD0([2]uint32{gpsIFD, 8})),
		"png eXIf":                         pngWithEXIF(t, exifIFD0(loop...)),
	} {
		start := time.Now()
		_, err := e.Probe(data)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		wantError(t, err, http.StatusUnprocessableEntity, CodeCorrupt)
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Errorf("%s: refused after %v", name, took)
		}
	}
}

// pngWithEXIF is a small PNG with an eXIf chunk holding tiff.
func pngWithEXIF(t *testing.T, tiff []byte) []byte {
	t.Helper()
	p := fixtures.PNG(20, 10, 3, false)
	var chunk bytes.Buffer
	_ = binary.Write(&chunk, binary.BigEndian, uint32(len(tiff)))
	chunk.WriteString("eXIf")
	chunk.Write(tiff)
	_ = binary.Write(&chunk, binary.BigEndian, crc32.ChecksumIEEE(append([]byte("eXIf"), tiff...)))
	at := 8 + 25 // after the signature and IHDR
	return append(append(bytes.Clone(p[:at]), chunk.Bytes()...), p[at:]...)
}

// withGarbageICC puts an APP2 ICC segment of random bytes (no 'acsp'
// signature) right after a JPEG's SOI.
func withGarbageICC(jpg []byte) []byte {
	noise := make([]byte, 500)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	payload := append([]byte("ICC_PROFILE\x00\x01\x01"), noise...)
	out := append([]byte{0xFF, 0xD8, 0xFF, 0xE2}, byte((len(payload)+2)>>8), byte(len(payload)+2))
	return append(append(out, payload...), jpg[2:]...)
}

// A profile lcms cannot read failed the whole image ("could not be
// decoded") when its pixels were fine: it is now ignored, as browsers do,
// for an image and for a watermark image alike. A watermark that cannot be
// rendered says so (watermark_unusable), not that the image is undecodable.
func TestUnusableICCAndWatermarkFailures(t *testing.T) {
	e := testEngine(t)
	// Grayscale, as lcms is asked to import the profile for those.
	gray := image.NewGray(image.Rect(0, 0, 120, 80))
	for i := range gray.Pix {
		gray.Pix[i] = byte(i * 7)
	}
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, gray, nil); err != nil {
		t.Fatal(err)
	}
	bad := withGarbageICC(jpg.Bytes())
	req, err := e.ParseRequestString("width=60&format=png")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := e.Process(context.Background(), Input{Data: bad, Spec: req.Variants[0].Spec})
	if err != nil {
		t.Fatalf("a JPEG with a garbage profile: %v", err)
	}
	if img, err := png.Decode(bytes.NewReader(out)); err != nil || img.Bounds().Dx() != 60 || img.Bounds().Dy() != 40 {
		t.Fatalf("result: %v, %v", err, img)
	}
	const id = "0123456789abcdef0123456789abcdef"
	req, err = e.ParseRequestString("format=png&watermark_image=" + id + "&watermark_size=0.5")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Process(context.Background(), Input{Data: fixtures.JPEG(200, 150, 1), Spec: req.Variants[0].Spec,
		Watermarks: map[string][]byte{id: bad}}); err != nil {
		t.Fatalf("a watermark image with a garbage profile: %v", err)
	}
	req, err = e.ParseRequestString("width=4000&height=4000&fit=fill&format=jpeg&watermark_text=" + strings.Repeat("W", 130))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = e.Process(context.Background(), Input{Data: fixtures.JPEG(200, 150, 1), Spec: req.Variants[0].Spec})
	if pe := wantError(t, err, http.StatusUnprocessableEntity, CodeWatermark); !strings.Contains(pe.Message, "watermark text") {
		t.Errorf("message %q", pe.Message)
	}
}

// chainedTIFF is a 1x1 grayscale TIFF of pages directories in a chain,
// all naming the same pixel.
func chainedTIFF(pages int) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("II")
	_ = binary.Write(&b, le, uint16(42))
	_ = binary.Write(&b, le, uint32(9)) // IFD0 after the header and the pixel
	b.WriteByte(0x80)                   // the pixel, at 8
	const ifdSize = 2 + 8*12 + 4
	for i := range pages {
		next := uint32(0)
		if i < pages-1 {
			next = uint32(9 + (i+1)*ifdSize)
		}
		_ = binary.Write(&b, le, uint16(8))
		for _, e := range [][3]uint32{{256, 3, 1}, {257, 3, 1}, {258, 3, 8}, {259, 3, 1}, {262, 3, 1}, {273, 4, 8}, {278, 3, 1}, {279, 4, 1}} {
			_ = binary.Write(&b, le, uint16(e[0]))
			_ = binary.Write(&b, le, uint16(e[1]))
			_ = binary.Write(&b, le, uint32(1))
			_ = binary.Write(&b, le, e[2])
		}
		_ = binary.Write(&b, le, next)
	}
	return b.Bytes()
}

// libtiff counts a TIFF's pages when it opens one: 400,000 chained
// directories in 45 MB held the upload's request for 4 s. Over 10,000 are
// refused by the structure walk, before libvips.
func TestTIFFWithTooManyPagesRefused(t *testing.T) {
	e := testEngine(t)
	if info, err := e.Probe(chainedTIFF(3)); err != nil || info.Width != 1 {
		t.Fatalf("a 3-page TIFF: %+v, %v", info, err)
	}
	start := time.Now()
	_, err := e.Probe(chainedTIFF(maxIFDs + 1))
	if pe := wantError(t, err, http.StatusUnprocessableEntity, CodeCorrupt); pe != nil && time.Since(start) > time.Second {
		t.Errorf("refused after %v", time.Since(start))
	}
}
