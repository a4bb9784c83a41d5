package transform

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
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

// orientationAs is a little-endian TIFF block whose IFD0 holds only the
// Orientation tag, of type typ with count values given as value's bytes
// (after the directory when longer than four).
func orientationAs(typ uint16, count uint32, value []byte) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(le.AppendUint16([]byte("II"), 42), 8)
	b = le.AppendUint32(le.AppendUint16(le.AppendUint16(le.AppendUint16(b, 1), tagOrientation), typ), count)
	if len(value) <= 4 {
		b = append(b, append(bytes.Clone(value), make([]byte, 4-len(value))...)...)
		return le.AppendUint32(b, 0)
	}
	b = le.AppendUint32(b, 8+2+12+4)
	return append(le.AppendUint32(b, 0), value...)
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
