package transform

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/h2non/bimg"

	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// segment is one APPn marker segment for withSegments.
type segment struct {
	marker  byte
	payload []byte
}

// withSegments puts segs, in order, right after a JPEG's SOI.
func withSegments(jpg []byte, segs ...segment) []byte {
	out := append([]byte{}, jpg[:2]...)
	for _, s := range segs {
		out = append(out, 0xFF, s.marker, 0, 0)
		binary.BigEndian.PutUint16(out[len(out)-2:], uint16(len(s.payload)+2))
		out = append(out, s.payload...)
	}
	return append(out, jpg[2:]...)
}

func exifSeg(tiff []byte) segment {
	return segment{0xE1, append([]byte("Exif\x00\x00"), tiff...)}
}

// iccSeg is chunk seq of n of a profile.
func iccSeg(seq, n byte, chunk []byte) segment {
	return segment{0xE2, append([]byte{'I', 'C', 'C', '_', 'P', 'R', 'O', 'F', 'I', 'L', 'E', 0, seq, n}, chunk...)}
}

// orientationEXIF is a TIFF block whose IFD0 holds the Orientation tag with
// type typ (3 SHORT, 4 LONG) and value v, in byte order bo; ifd1 puts it in
// IFD1 instead, behind an empty IFD0.
func orientationEXIF(bo binary.AppendByteOrder, typ uint16, v uint32, ifd1 bool) []byte {
	b := []byte("II")
	if bo == binary.AppendByteOrder(binary.BigEndian) {
		b = []byte("MM")
	}
	b = bo.AppendUint32(bo.AppendUint16(b, 42), 8)
	if ifd1 {
		b = bo.AppendUint32(bo.AppendUint16(b, 0), 14) // IFD1 right after
	}
	b = bo.AppendUint32(bo.AppendUint16(bo.AppendUint16(bo.AppendUint16(b, 1), tagOrientation), typ), 1)
	if typ == 3 {
		b = bo.AppendUint16(bo.AppendUint16(b, uint16(v)), 0)
	} else {
		b = bo.AppendUint32(b, v)
	}
	return bo.AppendUint32(b, 0)
}

// tailAt is where tiffWith puts its tail after a one-entry IFD0.
const tailAt = 8 + 2 + 12 + 4

// orientationAs is a little-endian TIFF block whose IFD0 holds only the
// Orientation tag, of type typ with count values given as value's bytes
// (after the directory when longer than four).
func orientationAs(typ uint16, count uint32, value []byte) []byte {
	le := binary.LittleEndian
	if len(value) <= 4 {
		return tiffWith(le, [][]byte{ifdEntry(le, tagOrientation, typ, count, value)}, nil)
	}
	return tiffWith(le, [][]byte{ifdEntry(le, tagOrientation, typ, count, le.AppendUint32(nil, tailAt))}, value)
}

// Process reads a JPEG's header from its markers (jpegHeader) instead of
// libvips': on every kind of header here, it must learn what libvips
// learns from the same bytes, or an image would be turned, or its colours
// converted, unlike the description its upload was given.
func TestJPEGHeaderAgreesWithLibvips(t *testing.T) {
	e := testEngine(t)
	rgb := encJPEG(t, quadImage(48, 32))
	grey := encJPEG(t, image.NewGray(image.Rect(0, 0, 20, 30)))
	srgb, a98path := ghostscriptProfile(t, "srgb.icc"), ghostscriptProfile(t, "a98.icc")
	a98, err := os.ReadFile(a98path)
	if err != nil {
		t.Fatal(err)
	}
	cmyk, err := bimg.Resize(encPNG(t, fixtures.Solid(16, 24, color.RGBA{150, 110, 90, 255})),
		bimg.Options{InputICC: srgb, OutputICC: ghostscriptProfile(t, "default_cmyk.icc"), Type: bimg.JPEG})
	if err != nil {
		t.Fatal(err)
	}
	tagged, err := bimg.Resize(encPNG(t, quadImage(40, 30)), bimg.Options{InputICC: srgb, OutputICC: a98path, Type: bimg.JPEG})
	if err != nil {
		t.Fatal(err)
	}
	progressive, err := bimg.NewImage(rgb).Process(bimg.Options{Type: bimg.JPEG, Interlace: true})
	if err != nil {
		t.Fatal(err)
	}
	le, be := binary.LittleEndian, binary.BigEndian
	cases := map[string][]byte{
		"rgb": rgb, "grey": grey, "cmyk": cmyk, "icc from libvips": tagged,
		"progressive": progressive,
		"xmp only":    withSegments(rgb, segment{0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x/>")}),
		"exif twice, 6 then 3": withSegments(rgb, exifSeg(orientationEXIF(le, 3, 6, false)),
			exifSeg(orientationEXIF(le, 3, 3, false))),
		"exif after xmp": withSegments(rgb, segment{0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x/>")},
			exifSeg(orientationEXIF(be, 3, 8, false))),
		"orientation in ifd1 only":      withSegments(rgb, exifSeg(orientationEXIF(le, 3, 6, true))),
		"orientation as long":           withSegments(rgb, exifSeg(orientationEXIF(be, 4, 5, false))),
		"exif of garbage":               withSegments(rgb, segment{0xE1, []byte("Exif\x00\x00II*\x00\xff\xff\xff\x7f")}),
		"icc, one chunk":                withSegments(rgb, iccSeg(1, 1, a98)),
		"icc, two chunks reversed":      withSegments(rgb, iccSeg(2, 2, a98[100:]), iccSeg(1, 2, a98[:100])),
		"icc, chunk 2 only":             withSegments(rgb, iccSeg(2, 2, a98[100:])),
		"icc, chunk 1 of 2 only":        withSegments(rgb, iccSeg(1, 2, a98[:100])),
		"icc, chunk 1 of 2 only, whole": withSegments(rgb, iccSeg(1, 2, a98)),
		"icc, chunks 1 and 3 of 3":      withSegments(rgb, iccSeg(1, 3, a98[:100]), iccSeg(3, 3, a98[100:])),
		"icc, chunk 1 twice":            withSegments(rgb, iccSeg(1, 1, a98[:50]), iccSeg(1, 1, a98)),
		"icc, chunk 0":                  withSegments(rgb, iccSeg(0, 1, a98)),
		"icc, one byte":                 withSegments(rgb, iccSeg(1, 1, a98[:1])),
		"icc, empty":                    withSegments(rgb, iccSeg(1, 1, nil)),
		"icc of garbage":                withGarbageICC(rgb),
	}
	full := orientationEXIF(le, 3, 6, false)
	noNext := full[:len(full)-4] // IFD0 without the next directory's offset
	overcounted := bytes.Clone(noNext)
	le.PutUint16(overcounted[8:], 2) // says 2 entries, holds 1
	signed := bytes.Clone(full)
	le.PutUint16(signed[12:], 8) // SSHORT
	signedLong := orientationEXIF(le, 4, 6, false)
	le.PutUint16(signedLong[12:], 9) // SLONG
	twoValues := bytes.Clone(full)
	le.PutUint32(twoValues[14:], 2) // SHORT count 2, both inline
	asByte := bytes.Clone(full)
	le.PutUint16(asByte[12:], 1) // BYTE
	noValue := bytes.Clone(full)
	le.PutUint32(noValue[14:], 0)
	for name, x := range map[string][]byte{
		"orientation, no next offset": noNext, "orientation, ifd0 overcounted": overcounted,
		"orientation as sshort": signed, "orientation as slong": signedLong,
		"orientation, two values": twoValues, "orientation as a byte": asByte,
		"orientation, no value":                noValue,
		"orientation as sbyte":                 orientationAs(6, 1, []byte{6}),
		"orientation, -2":                      orientationAs(8, 1, []byte{0xfe, 0xff}),
		"orientation as rational":              orientationAs(5, 1, []byte{6, 0, 0, 0, 1, 0, 0, 0}),
		"orientation as 12/2":                  orientationAs(5, 1, []byte{12, 0, 0, 0, 2, 0, 0, 0}),
		"orientation as srational":             orientationAs(10, 1, []byte{6, 0, 0, 0, 1, 0, 0, 0}),
		"orientation as text":                  orientationAs(2, 2, []byte("6\x00")),
		"orientation as text, 12":              orientationAs(2, 3, []byte("3x\x00")),
		"orientation undefined":                orientationAs(7, 1, []byte{6}),
		"orientation as a float":               orientationAs(11, 1, []byte{0, 0, 0xc0, 0x40}),
		"orientation, values out of the block": orientationAs(3, 200, []byte{6, 0}),
	} {
		cases[name] = withSegments(rgb, exifSeg(x))
	}
	for o := range uint32(11) {
		cases["orientation "+string(rune('0'+o))] = withSegments(rgb, exifSeg(orientationEXIF(le, 3, o, false)))
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			sameJPEGHeader(t, e, data)
		})
	}
}

// ifdEntry is one 12-byte IFD entry; value fills its value field.
func ifdEntry(bo binary.ByteOrder, tag, typ uint16, count uint32, value []byte) []byte {
	b := make([]byte, 12)
	bo.PutUint16(b, tag)
	bo.PutUint16(b[2:], typ)
	bo.PutUint32(b[4:], count)
	copy(b[8:], value)
	return b
}

// tiffWith is a TIFF block whose IFD0, at 8, holds entries, followed by
// tail (at 8+2+12*len(entries)+4, where an entry's offset may point).
func tiffWith(bo binary.AppendByteOrder, entries [][]byte, tail []byte) []byte {
	b := []byte("II")
	if bo == binary.AppendByteOrder(binary.BigEndian) {
		b = []byte("MM")
	}
	b = bo.AppendUint16(bo.AppendUint32(bo.AppendUint16(b, 42), 8), uint16(len(entries)))
	for _, e := range entries {
		b = append(b, e...)
	}
	return append(bo.AppendUint32(b, 0), tail...)
}

// Damaged EXIF blocks, each a way in which libexif and libvips between
// them read an Orientation tag (exifOrientation), and random blocks full
// of Orientation entries of every type and count: Process must turn the
// image as libvips, and so Probe, says.
func TestEXIFOrientationAgreesWithLibvips(t *testing.T) {
	e := testEngine(t)
	rgb := encJPEG(t, quadImage(16, 16))
	le, be := binary.LittleEndian, binary.BigEndian
	u16 := func(bo binary.ByteOrder, v uint16) []byte { return bo.(binary.AppendByteOrder).AppendUint16(nil, v) }
	u32 := func(bo binary.ByteOrder, v uint32) []byte { return bo.(binary.AppendByteOrder).AppendUint32(nil, v) }
	orient := func(bo binary.ByteOrder, typ uint16, count uint32, value []byte) []byte {
		return ifdEntry(bo, tagOrientation, typ, count, value)
	}
	sixes := bytes.Repeat(u16(le, 6), 10)
	// IFD0 at 2: its count is the TIFF magic (42), its one real entry the
	// second that fits.
	inside := append([]byte{'I', 'I', 42, 0, 2, 0, 0, 0}, make([]byte, 8)...)
	inside = append(append(inside, orient(le, 3, 1, u16(le, 6))...), 0, 0, 0, 0)
	cases := map[string][]byte{
		"big-endian short":         tiffWith(be, [][]byte{orient(be, 3, 1, u16(be, 6))}, nil),
		"long 0x10006, big-endian": tiffWith(be, [][]byte{orient(be, 4, 1, u32(be, 0x10006))}, nil),
		"long 0x10006":             tiffWith(le, [][]byte{orient(le, 4, 1, u32(le, 0x10006))}, nil),
		"slong 0xffff0006":         tiffWith(le, [][]byte{orient(le, 9, 1, u32(le, 0xffff0006))}, nil),
		"sshort -2":                tiffWith(le, [][]byte{orient(le, 8, 1, u16(le, 0xfffe))}, nil),
		"sbyte -6":                 tiffWith(le, [][]byte{orient(le, 6, 1, []byte{0xfa})}, nil),
		"3, then 6":                tiffWith(le, [][]byte{orient(le, 3, 1, u16(le, 3)), orient(le, 3, 1, u16(le, 6))}, nil),
		"values past the end, 6":   tiffWith(le, [][]byte{orient(le, 3, 200, u32(le, 40)), orient(le, 3, 1, u16(le, 6))}, nil),
		"no values, then 6":        tiffWith(le, [][]byte{orient(le, 3, 0, nil), orient(le, 3, 1, u16(le, 6))}, nil),
		"type 0, then 6":           tiffWith(le, [][]byte{orient(le, 0, 1, nil), orient(le, 3, 1, u16(le, 6))}, nil),
		"type 13 (ifd), then 6":    tiffWith(le, [][]byte{orient(le, 13, 1, u32(le, 6)), orient(le, 3, 1, u16(le, 6))}, nil),
		"a huge count":             tiffWith(le, [][]byte{orient(le, 3, 0xffffffff, u32(le, tailAt))}, nil),
		"a count that wraps":       tiffWith(le, [][]byte{orient(le, 3, 0x80000003, u16(le, 6))}, nil),
		"ten shorts":               tiffWith(le, [][]byte{orient(le, 3, 10, u32(le, tailAt))}, sixes),
		"nine shorts":              tiffWith(le, [][]byte{orient(le, 3, 9, u32(le, tailAt))}, sixes[:18]),
		"ten rationals":            tiffWith(le, [][]byte{orient(le, 5, 10, u32(le, tailAt))}, append([]byte{6, 0, 0, 0, 1, 0, 0, 0}, make([]byte, 72)...)),
		"rational 6/0":             tiffWith(le, [][]byte{orient(le, 5, 1, u32(le, tailAt))}, []byte{6, 0, 0, 0, 0, 0, 0, 0}),
		"three bytes":              tiffWith(le, [][]byte{orient(le, 1, 3, []byte{7, 1, 1})}, nil),
		"text +6":                  tiffWith(le, [][]byte{orient(le, 2, 3, []byte("+6\x00"))}, nil),
		"text ' 7'":                tiffWith(le, [][]byte{orient(le, 2, 3, []byte(" 7\x00"))}, nil),
		"text without its nul":     tiffWith(le, [][]byte{orient(le, 2, 1, []byte("5"))}, nil),
		"text 2^32+6":              tiffWith(le, [][]byte{orient(le, 2, 11, u32(le, tailAt))}, []byte("4294967302\x00")),
		"text -4294967290":         tiffWith(le, [][]byte{orient(le, 2, 12, u32(le, tailAt))}, []byte("-4294967290\x00")),
		"text beyond 64 bits":      tiffWith(le, [][]byte{orient(le, 2, 24, u32(le, tailAt))}, []byte("99999999999999999999999\x00")),
		"ifd0 inside the header":   inside,
	}
	for name, x := range cases {
		t.Run(name, func(t *testing.T) { sameJPEGHeader(t, e, withSegments(rgb, exifSeg(x))) })
	}

	rng := rand.New(rand.NewPCG(1, 2))
	compared := 0
	for i := range 3000 {
		var bo binary.ByteOrder = binary.LittleEndian
		b := []byte("II\x00\x00\x00\x00\x00\x00")
		if rng.IntN(2) == 0 {
			bo, b = binary.BigEndian, []byte("MM\x00\x00\x00\x00\x00\x00")
		}
		bo.PutUint16(b[2:], 42)
		for range 60 + rng.IntN(40) {
			b = append(b, byte(rng.IntN(12)))
		}
		off := uint32(8)
		if rng.IntN(4) == 0 {
			off = uint32(rng.IntN(20))
		}
		bo.PutUint32(b[4:], off)
		if off >= 8 {
			n := 1 + rng.IntN(3)
			bo.PutUint16(b[off:], uint16(n+rng.IntN(2)))
			for k := range n {
				p := int(off) + 2 + 12*k
				bo.PutUint16(b[p:], tagOrientation)
				bo.PutUint16(b[p+2:], uint16(rng.IntN(14)))
				bo.PutUint32(b[p+4:], []uint32{0, 1, 1, 1, 2, 9, 10, 11, 0xffffffff, 0x80000001}[rng.IntN(10)])
				if rng.IntN(2) == 0 {
					bo.PutUint32(b[p+8:], uint32(rng.IntN(len(b)+4)))
				}
			}
		}
		data := withSegments(rgb, exifSeg(b))
		got, err := e.inspect(data, false)
		want := inspection{format: fmtJPEG}
		if err != nil || e.readHeader(data, &want, false) != nil {
			continue // refused (a directory reached twice, say): not Process's to read
		}
		compared++
		if got.orientation != want.orientation {
			t.Fatalf("block %d: from the markers %d, libvips %d: % x", i, got.orientation, want.orientation, b)
		}
	}
	if compared < 2000 {
		t.Fatalf("only %d of 3000 random blocks were read by both", compared)
	}
}
