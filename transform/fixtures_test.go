package transform

// Fixtures are generated in code: Go's encoders for JPEG/PNG/GIF, a
// hand-written EXIF block, a hand-built deflate stream for the pixel bomb.

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"testing"
)

// Quadrant colours of quadImage: top-left red, top-right green,
// bottom-left blue, bottom-right yellow.
var (
	red    = color.RGBA{255, 0, 0, 255}
	green  = color.RGBA{0, 255, 0, 255}
	blue   = color.RGBA{0, 0, 255, 255}
	yellow = color.RGBA{255, 255, 0, 255}
	white  = color.RGBA{255, 255, 255, 255}
	black  = color.RGBA{0, 0, 0, 255}
)

func quadImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := red
			switch {
			case x >= w/2 && y < h/2:
				c = green
			case x < w/2 && y >= h/2:
				c = blue
			case x >= w/2 && y >= h/2:
				c = yellow
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func encJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encPNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// animatedGIF has n frames of w x h, frame i filled with palette colour i.
func animatedGIF(t testing.TB, n, w, h int) []byte {
	t.Helper()
	pal := color.Palette{red, green, blue, yellow, white, black}
	anim := &gif.GIF{LoopCount: 0}
	for i := 0; i < n; i++ {
		fr := image.NewPaletted(image.Rect(0, 0, w, h), pal)
		for j := range fr.Pix {
			fr.Pix[j] = uint8(i % len(pal))
		}
		anim.Image = append(anim.Image, fr)
		anim.Delay = append(anim.Delay, 10)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, anim); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// exifTag is one IFD entry for buildEXIF: ASCII when s is set, else SHORT.
type exifTag struct {
	tag uint16
	s   string
	v   uint16
}

// buildEXIF writes a little-endian TIFF block: IFD0 with tags, optionally
// an Exif sub-IFD and a GPS IFD.
func buildEXIF(ifd0, sub, gps []exifTag) []byte {
	le := binary.LittleEndian
	var out []byte
	out = append(out, 'I', 'I', 42, 0, 8, 0, 0, 0)
	type pending struct {
		at   int
		tags []exifTag
	}
	// Lay out IFDs one after another, strings after each IFD.
	var writeIFD func(tags []exifTag, pointers map[uint16][]exifTag) int
	writeIFD = func(tags []exifTag, pointers map[uint16][]exifTag) int {
		start := len(out)
		n := len(tags) + len(pointers)
		out = append(out, make([]byte, 2+12*n+4)...)
		le.PutUint16(out[start:], uint16(n))
		var fix []pending
		i := 0
		for _, tg := range tags {
			e := start + 2 + 12*i
			le.PutUint16(out[e:], tg.tag)
			if tg.s != "" {
				s := append([]byte(tg.s), 0)
				le.PutUint16(out[e+2:], 2)
				le.PutUint32(out[e+4:], uint32(len(s)))
				if len(s) <= 4 {
					copy(out[e+8:], s)
				} else {
					le.PutUint32(out[e+8:], uint32(len(out)))
					out = append(out, s...)
				}
			} else {
				le.PutUint16(out[e+2:], 3)
				le.PutUint32(out[e+4:], 1)
				le.PutUint16(out[e+8:], tg.v)
			}
			i++
		}
		for tag, sub := range pointers {
			e := start + 2 + 12*i
			le.PutUint16(out[e:], tag)
			le.PutUint16(out[e+2:], 4)
			le.PutUint32(out[e+4:], 1)
			fix = append(fix, pending{at: e + 8, tags: sub})
			i++
		}
		for _, f := range fix {
			off := writeIFD(f.tags, nil)
			le.PutUint32(out[f.at:], uint32(off))
		}
		return start
	}
	ptrs := map[uint16][]exifTag{}
	if sub != nil {
		ptrs[tagExifIFD] = sub
	}
	if gps != nil {
		ptrs[tagGPSIFD] = gps
	}
	writeIFD(ifd0, ptrs)
	return out
}

// withEXIF inserts an APP1 Exif segment right after the JPEG's SOI.
func withEXIF(jpg, tiff []byte) []byte {
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

// pngBomb claims w x h 8-bit grey and carries a complete zlib stream of
// (w+1)*h zero bytes, built without compressing them: one deflate block of
// zeros that only refers back to earlier zeros is valid after any zeros,
// so it is repeated.
func pngBomb(t testing.TB, w, h int) []byte {
	t.Helper()
	total := int64(w+1) * int64(h)
	const chunk = 1 << 20
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	zeros := make([]byte, chunk)
	fw.Write(zeros)
	fw.Flush()
	first := append([]byte(nil), z.Bytes()...)
	z.Reset()
	fw.Write(zeros)
	fw.Flush()
	repeat := append([]byte(nil), z.Bytes()...)
	z.Reset()
	n := total / chunk
	rest := total % chunk
	fw.Write(zeros[:rest])
	fw.Close()
	tail := z.Bytes()

	var idat bytes.Buffer
	idat.Write([]byte{0x78, 0xDA})
	idat.Write(first)
	for i := int64(1); i < n; i++ {
		idat.Write(repeat)
	}
	idat.Write(tail)
	// Adler-32 of zeros: a stays 1, b grows by 1 per byte.
	adler := uint32(total%65521)<<16 | 1
	binary.Write(&idat, binary.BigEndian, adler)

	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 0 // 8-bit greyscale
	writeChunk(&out, "IHDR", ihdr)
	writeChunk(&out, "IDAT", idat.Bytes())
	writeChunk(&out, "IEND", nil)
	return out.Bytes()
}

func writeChunk(w io.Writer, typ string, data []byte) {
	binary.Write(w, binary.BigEndian, uint32(len(data)))
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	w.Write([]byte(typ))
	w.Write(data)
	binary.Write(w, binary.BigEndian, crc.Sum32())
}
