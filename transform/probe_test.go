package transform

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"image"
	"image/color"
	"net/http"
	"testing"
)

func TestProbeFormats(t *testing.T) {
	e := testEngine(t)
	jpg := encJPEG(t, quadImage(120, 80))
	alpha := image.NewNRGBA(image.Rect(0, 0, 30, 20))
	alpha.Set(1, 1, color.NRGBA{255, 0, 0, 128})
	gray := image.NewGray(image.Rect(0, 0, 40, 30))

	conv := func(f string) []byte {
		out, _, err := e.Process(context.Background(), Input{Data: jpg, Spec: Spec{Format: f}})
		if err != nil {
			t.Fatalf("make %s: %v", f, err)
		}
		return out
	}
	cases := []struct {
		name   string
		data   []byte
		format string
		w, h   int
		cs     string
		alpha  bool
		pages  int
		anim   bool
	}{
		{"jpeg", jpg, "jpeg", 120, 80, "srgb", false, 1, false},
		{"grey jpeg", encJPEG(t, gray), "jpeg", 40, 30, "b-w", false, 1, false},
		{"png alpha", encPNG(t, alpha), "png", 30, 20, "srgb", true, 1, false},
		{"gif anim", animatedGIF(t, 4, 20, 10), "gif", 20, 10, "srgb", false, 4, true},
		{"gif still", animatedGIF(t, 1, 20, 10), "gif", 20, 10, "srgb", false, 1, false},
		{"webp", conv("webp"), "webp", 120, 80, "srgb", false, 1, false},
		{"tiff", conv("tiff"), "tiff", 120, 80, "srgb", false, 1, false},
		{"avif", conv("avif"), "avif", 120, 80, "srgb", false, 1, false},
		{"heif", conv("heif"), "heif", 120, 80, "srgb", false, 1, false},
	}
	for _, c := range cases {
		info, err := e.Probe(c.data)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		sum := sha256.Sum256(c.data)
		if info.Format != c.format || info.Width != c.w || info.Height != c.h || info.ColorSpace != c.cs ||
			info.Alpha != c.alpha || info.Pages != c.pages || info.Animated != c.anim || info.Orientation != 1 ||
			info.Size != int64(len(c.data)) || info.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: %+v", c.name, info)
		}
	}
}

func TestProbeEXIFSummary(t *testing.T) {
	e := testEngine(t)
	ex := buildEXIF(
		[]exifTag{{tag: tagMake, s: "Canon"}, {tag: tagModel, s: "EOS R5"}, {tag: tagOrientation, v: 6}, {tag: tagDateTime, s: "2020:01:01 00:00:00"}},
		[]exifTag{{tag: tagDateTimeOriginal, s: "2024:05:01 12:34:56"}, {tag: tagLensModel, s: "RF24-105mm F4 L IS USM"}},
		[]exifTag{{tag: tagGPSLatitude, v: 1}},
	)
	info, err := e.Probe(withEXIF(encJPEG(t, quadImage(60, 40)), ex))
	if err != nil {
		t.Fatal(err)
	}
	x := info.EXIF
	if x == nil || x.Make != "Canon" || x.Model != "EOS R5" || x.Lens != "RF24-105mm F4 L IS USM" ||
		x.DateTaken != "2024-05-01T12:34:56" || !x.GPSPresent {
		t.Errorf("exif %+v", x)
	}
	if info.Orientation != 6 || info.Width != 60 || info.Height != 40 {
		t.Errorf("orientation %d, %dx%d (stored size expected)", info.Orientation, info.Width, info.Height)
	}
	// No GPS IFD: GPSPresent false.
	info, _ = e.Probe(withEXIF(encJPEG(t, quadImage(60, 40)), buildEXIF([]exifTag{{tag: tagMake, s: "X"}}, nil, nil)))
	if info.EXIF == nil || info.EXIF.GPSPresent || info.EXIF.Make != "X" {
		t.Errorf("exif %+v", info.EXIF)
	}
}

// iccProfile builds a minimal v2 profile holding a 'desc' tag.
func iccProfile(desc string) []byte {
	tag := make([]byte, 12+len(desc)+1)
	copy(tag, "desc")
	binary.BigEndian.PutUint32(tag[8:], uint32(len(desc)+1))
	copy(tag[12:], desc)
	p := make([]byte, 128+4+12)
	binary.BigEndian.PutUint32(p[128:], 1)
	copy(p[132:], "desc")
	binary.BigEndian.PutUint32(p[136:], uint32(len(p)))
	binary.BigEndian.PutUint32(p[140:], uint32(len(tag)))
	p = append(p, tag...)
	binary.BigEndian.PutUint32(p, uint32(len(p)))
	copy(p[36:], "acsp")
	return p
}

// withICC inserts an APP2 ICC_PROFILE segment after the SOI.
func withICC(jpg, profile []byte) []byte {
	payload := append([]byte("ICC_PROFILE\x00\x01\x01"), profile...)
	seg := []byte{0xFF, 0xE2, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

func TestProbeICCName(t *testing.T) {
	e := testEngine(t)
	info, err := e.Probe(withICC(encJPEG(t, quadImage(20, 20)), iccProfile("Test RGB Profile")))
	if err != nil {
		t.Fatal(err)
	}
	if info.ICCProfile != "Test RGB Profile" {
		t.Errorf("icc %q", info.ICCProfile)
	}
}

func TestICCDescriptionV4(t *testing.T) {
	// mluc with a German then an English record: English wins.
	rec := func(lang, s string) (hdr, body []byte) {
		u := []byte{}
		for _, r := range s {
			u = append(u, 0, byte(r))
		}
		h := make([]byte, 12)
		copy(h, lang)
		binary.BigEndian.PutUint32(h[4:], uint32(len(u)))
		return h, u
	}
	h1, b1 := rec("deDE", "Profil")
	h2, b2 := rec("enUS", "Display P3")
	mluc := append([]byte("mluc\x00\x00\x00\x00"), 0, 0, 0, 2, 0, 0, 0, 12)
	off := len(mluc) + 24
	binary.BigEndian.PutUint32(h1[8:], uint32(off))
	binary.BigEndian.PutUint32(h2[8:], uint32(off+len(b1)))
	mluc = append(append(append(append(mluc, h1...), h2...), b1...), b2...)
	p := make([]byte, 144)
	binary.BigEndian.PutUint32(p[128:], 1)
	copy(p[132:], "desc")
	binary.BigEndian.PutUint32(p[136:], 144)
	binary.BigEndian.PutUint32(p[140:], uint32(len(mluc)))
	p = append(p, mluc...)
	if got := iccDescription(p); got != "Display P3" {
		t.Errorf("got %q", got)
	}
}

func TestProbeSVGAndPDF(t *testing.T) {
	svg := []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="32"><rect width="32" height="32" fill="#ff0000"/><rect x="32" width="32" height="32" fill="url(#g)"/><defs><linearGradient id="g"><stop offset="0" stop-color="#00f"/></linearGradient></defs></svg>`)
	off := testEngine(t)
	_, err := off.Probe(svg)
	wantError(t, err, http.StatusUnsupportedMediaType, CodeUnsupportedType)
	_, err = off.Probe([]byte("%PDF-1.4\n%%EOF\n"))
	wantError(t, err, http.StatusUnsupportedMediaType, CodeUnsupportedType)

	on := testEngine(t, func(c *Config) { c.AllowSVG = true })
	info, err := on.Probe(svg)
	if err != nil || info.Format != "svg" || info.Width != 64 || info.Height != 32 {
		t.Fatalf("svg: %+v %v", info, err)
	}
	// auto format for SVG is PNG; enlarge renders the vector at the size.
	_, img := process(t, on, svg, "width=128&enlarge=1")
	if b := img.Bounds(); b.Dx() != 128 || b.Dy() != 64 {
		t.Errorf("svg render %v", b)
	}
	wantPixel(t, img, 10, 30, red, 2, "svg left")
	wantPixel(t, img, 100, 30, blue, 2, "svg right")
}
