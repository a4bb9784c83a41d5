package transform

import (
	"bytes"
	"encoding/binary"
	"strconv"
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
// or the value is not one of the eight. libexif loads the block, libvips
// writes the tag out as text and reads back the number it begins with, and
// each has its ways with a damaged block, found by experiment
// (TestJPEGHeaderAgreesWithLibvips, TestEXIFOrientationAgreesWithLibvips):
//   - IFD0 may sit anywhere that leaves room for its entry count, and its
//     entries are read as far as the block holds them, whatever the count
//     says, with no need for the next directory's offset;
//   - an Orientation entry libexif cannot load (a type it does not know, no
//     values, a size that wraps 32 bits, values past the end) is skipped,
//     and the next one counts.
func exifOrientation(raw []byte) int {
	t, off, ok := newTIFFReader(bytes.TrimPrefix(raw, []byte("Exif\x00\x00")))
	if !ok || int64(off)+2 > int64(len(t.b)) {
		return 1
	}
	start := int64(off) + 2
	n := min(int64(t.bo.Uint16(t.b[off:])), (int64(len(t.b))-start)/12)
	for i := range n {
		at := start + 12*i
		e := t.b[at:]
		if t.bo.Uint16(e) != tagOrientation {
			continue
		}
		typ, count := t.bo.Uint16(e[2:]), t.bo.Uint32(e[4:])
		var unit uint32 // libexif knows TIFF's first twelve types, not IFD (13)
		if typ >= 1 && typ <= 12 {
			unit = uint32(tiffTypeSize[typ])
		}
		size := unit * count // in 32 bits, as libexif computes it
		if size == 0 || size < count {
			continue
		}
		from := uint64(at + 8)
		if size > 4 {
			from = uint64(t.bo.Uint32(e[8:]))
		}
		if from+uint64(size) > uint64(len(t.b)) {
			continue
		}
		return orientationValue(t.bo, typ, count, t.b[from:from+uint64(size)])
	}
	return 1
}

// orientationValue is the number libvips reads from the text it makes of
// an Orientation entry: the first value, which libexif has made a SHORT
// (keeping the low 16 bits) if it was of another integer type; a
// rational's numerator; the number a string begins with. Ten values or
// more are written out as libexif's words, which give no number.
func orientationValue(bo binary.ByteOrder, typ uint16, count uint32, d []byte) int {
	var v int64
	switch {
	case typ == 2: // ASCII
		v = cAtoi(d[:min(len(d), 254)])
	case count >= 10:
		return 1
	case typ == 1: // BYTE
		v = int64(d[0])
	case typ == 6: // SBYTE
		v = int64(uint16(int8(d[0])))
	case typ == 3 || typ == 8: // SHORT, SSHORT
		v = int64(bo.Uint16(d))
	case typ == 4 || typ == 9: // LONG, SLONG
		v = int64(uint16(bo.Uint32(d)))
	case typ == 5: // RATIONAL
		v = int64(bo.Uint32(d))
	case typ == 10: // SRATIONAL
		v = int64(int32(bo.Uint32(d)))
	}
	if v < 1 || v > 8 {
		return 1
	}
	return int(v)
}

// cAtoi reads the number a C string begins with as glibc's atoi does:
// strtol's, clamped to 64 bits on overflow, then cut to an int's 32.
func cAtoi(b []byte) int64 {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimLeft(b, " \t\n\v\f\r")
	sign := ""
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		sign, b = string(b[:1]), b[1:]
	}
	digits := len(b) - len(bytes.TrimLeft(b, "0123456789"))
	v, _ := strconv.ParseInt(sign+string(b[:digits]), 10, 64) // clamped on overflow; 0 without digits
	return int64(int32(v))
}
