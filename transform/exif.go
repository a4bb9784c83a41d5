package transform

import (
	"bytes"
	"strings"

	"github.com/imgpipe/imgpipe/model"
)

// EXIF tags summarised by Probe.
const (
	tagMake             = 0x010F
	tagModel            = 0x0110
	tagOrientation      = 0x0112
	tagDateTime         = 0x0132
	tagExifIFD          = 0x8769
	tagGPSIFD           = 0x8825
	tagDateTimeOriginal = 0x9003
	tagLensMake         = 0xA433
	tagLensModel        = 0xA434
	tagGPSLatitude      = 0x0002
	tagGPSLongitude     = 0x0004
)

// exifSummary reads camera, lens, date and GPS presence from a raw EXIF
// block (a TIFF structure, optionally behind "Exif\0\0"). A damaged block
// yields what could be read; nil means nothing could.
func exifSummary(raw []byte) *model.EXIF {
	raw = bytes.TrimPrefix(raw, []byte("Exif\x00\x00"))
	t, off, ok := newTIFFReader(raw)
	if !ok {
		return nil
	}
	ifd0, _, ok := t.ifd(off)
	if !ok {
		return nil
	}
	var x model.EXIF
	var date string
	for _, e := range ifd0 {
		switch e.tag {
		case tagMake:
			x.Make = t.ascii(e)
		case tagModel:
			x.Model = t.ascii(e)
		case tagDateTime:
			date = t.ascii(e)
		case tagExifIFD:
			if sub, ok := t.uint(e); ok {
				exifSubIFD(t, sub, &x)
			}
		case tagGPSIFD:
			if sub, ok := t.uint(e); ok {
				gps, _, ok := t.ifd(sub)
				_, lat := findEntry(gps, tagGPSLatitude)
				_, lon := findEntry(gps, tagGPSLongitude)
				x.GPSPresent = ok && (lat || lon)
			}
		}
	}
	if x.DateTaken == "" {
		x.DateTaken = exifDate(date)
	}
	return &x
}

func exifSubIFD(t *tiffReader, off uint32, x *model.EXIF) {
	entries, _, ok := t.ifd(off)
	if !ok {
		return
	}
	var lensMake, lensModel string
	for _, e := range entries {
		switch e.tag {
		case tagDateTimeOriginal:
			x.DateTaken = exifDate(t.ascii(e))
		case tagLensMake:
			lensMake = t.ascii(e)
		case tagLensModel:
			lensModel = t.ascii(e)
		}
	}
	switch {
	case lensModel != "" && lensMake != "" && !strings.HasPrefix(lensModel, lensMake):
		x.Lens = lensMake + " " + lensModel
	case lensModel != "":
		x.Lens = lensModel
	default:
		x.Lens = lensMake
	}
}

// exifDate turns "2024:05:01 12:34:56" into "2024-05-01T12:34:56" (EXIF
// keeps no zone); anything else is dropped rather than guessed at.
func exifDate(s string) string {
	if len(s) != 19 || s[4] != ':' || s[7] != ':' || s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return ""
	}
	for i, c := range []byte(s) {
		if i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && (c < '0' || c > '9') {
			return ""
		}
	}
	if s[:4] == "0000" {
		return ""
	}
	return s[:4] + "-" + s[5:7] + "-" + s[8:10] + "T" + s[11:]
}

// exifOrientation is the Orientation tag of IFD0 in a raw EXIF block, as
// inspect has it from libvips: 1 when the block or the tag cannot be read
// or the value is not one of the eight. libexif reads the entries of a
// directory that fit in the block, whatever its count says, without
// needing the next directory's offset after them; libvips then writes the
// tag's value out as text and reads the number it begins with: the first
// value of any integer type, a rational's numerator, the digits at the
// start of a string.
func exifOrientation(raw []byte) int {
	t, off, ok := newTIFFReader(bytes.TrimPrefix(raw, []byte("Exif\x00\x00")))
	if !ok || off < 8 || int64(off)+2 > int64(len(t.b)) {
		return 1
	}
	start := int64(off) + 2
	n := min(int64(t.bo.Uint16(t.b[off:])), (int64(len(t.b))-start)/12)
	for i := range n {
		b := t.b[start+12*i:]
		e := tiffEntry{tag: t.bo.Uint16(b), typ: t.bo.Uint16(b[2:]), count: t.bo.Uint32(b[4:]), raw: b[8:12]}
		if e.tag != tagOrientation {
			continue
		}
		d, ok := t.data(e)
		if !ok || e.count == 0 {
			return 1
		}
		var v int64
		switch e.typ {
		case 1: // BYTE
			v = int64(d[0])
		case 6: // SBYTE
			v = int64(int8(d[0]))
		case 3: // SHORT
			v = int64(t.bo.Uint16(d))
		case 8: // SSHORT
			v = int64(int16(t.bo.Uint16(d)))
		case 4, 5: // LONG, RATIONAL's numerator
			v = int64(t.bo.Uint32(d))
		case 9, 10: // SLONG, SRATIONAL's numerator
			v = int64(int32(t.bo.Uint32(d)))
		case 2: // ASCII
			v = leadingInt(d)
		}
		if v < 1 || v > 8 {
			return 1
		}
		return int(v)
	}
	return 1
}

// leadingInt is the number a string begins with, as C's atoi reads it:
// blanks, a sign, digits; 0 without digits.
func leadingInt(b []byte) int64 {
	b = bytes.TrimLeft(b, " \t\n\v\f\r")
	neg := len(b) > 0 && b[0] == '-'
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		b = b[1:]
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' || v > 1<<32 {
			break
		}
		v = 10*v + int64(c-'0')
	}
	if neg {
		return -v
	}
	return v
}
