package transform

import (
	"bytes"
	"encoding/binary"
)

// walkJPEG follows the marker segments up to the first scan, reading the
// frame size from SOFn, then wants an EOI after the scan data: entropy-coded
// data cannot contain FF D9, so a missing EOI means the file was cut. It
// counts the scans, whose markers (FF DA) entropy-coded data cannot hold
// either: each scan of a progressive JPEG is a pass over the whole image.
func walkJPEG(b []byte) (layout, error) {
	var l layout
	pos := 2
	for {
		for pos < len(b) && b[pos] == 0xFF && pos+1 < len(b) && b[pos+1] == 0xFF {
			pos++ // fill bytes
		}
		if pos+4 > len(b) {
			return l, truncatedf("jpeg ends inside its header")
		}
		if b[pos] != 0xFF {
			// libjpeg skips junk before a marker (with a warning): so do we.
			next := bytes.IndexByte(b[pos:], 0xFF)
			if next < 0 {
				return l, truncatedf("jpeg ends inside its header")
			}
			pos += next
			continue
		}
		m := b[pos+1]
		if m == 0x01 || (m >= 0xD0 && m <= 0xD8) { // standalone markers
			pos += 2
			continue
		}
		if m == 0xD9 {
			return l, corruptf("jpeg ends before any scan")
		}
		n := int(binary.BigEndian.Uint16(b[pos+2:]))
		if n < 2 {
			return l, corruptf("jpeg segment length %d", n)
		}
		end := pos + 2 + n
		if end > len(b) {
			return l, truncatedf("jpeg segment runs past the end")
		}
		seg := b[pos+4 : end]
		switch {
		case isSOF(m):
			if len(seg) < 6 {
				return l, corruptf("short jpeg frame header")
			}
			l.height = int(binary.BigEndian.Uint16(seg[1:]))
			l.width = int(binary.BigEndian.Uint16(seg[3:]))
			l.jpeg.components = int(seg[5])
			if l.width == 0 || l.height == 0 {
				return l, corruptf("jpeg frame is %dx%d", l.width, l.height)
			}
		case m == 0xE1:
			if bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
				if err := checkEXIF(seg); err != nil {
					return l, err
				}
			}
			l.jpeg.app1(seg)
		case m == 0xE2:
			l.jpeg.app2(seg)
		case m == 0xDA: // start of scan
			if l.width == 0 {
				return l, corruptf("jpeg scan before frame header")
			}
			eoi := bytes.Index(b[end:], []byte{0xFF, 0xD9})
			if eoi < 0 {
				return l, truncatedf("jpeg has no end-of-image marker")
			}
			// Up to the end of the image only: what follows (a phone's
			// motion video, a gain map) is not read, and random bytes
			// hold FF DA once in 64 KiB.
			l.scans = 1 + bytes.Count(b[end:end+eoi], []byte{0xFF, 0xDA})
			return l, nil
		}
		pos = end
	}
}

// isSOF reports the start-of-frame markers (not DHT C4, JPG C8, DAC CC).
func isSOF(m byte) bool {
	return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC
}

// jpegHeader is what the transform needs of a JPEG's header besides its
// size, read from the marker segments in walkJPEG's one pass. Probe, which
// describes the upload, has libvips read the header; Process, which runs
// on uploads Probe passed, takes these instead (jpegInspection): libvips'
// header read (a loader operation, an image and its metadata, about 50 us)
// was 2.7% of the pipeline's CPU on the bench's small images. The tests
// (jpeg_header_test.go, FuzzProbe) hold them to what libvips reads from
// the same bytes.
type jpegHeader struct {
	components int    // in the frame: 1 grey, 3 colour, 4 CMYK or YCCK
	exif       []byte // the first APP1 that libvips takes for EXIF
	// iccChunks are the APP2 ICC_PROFILE chunks by number, from 1: the
	// last of a number wins, as in libvips.
	iccChunks [][]byte
}

func (h *jpegHeader) app1(seg []byte) {
	if h.exif == nil && len(seg) > 4 && bytes.HasPrefix(seg, []byte("Exif")) {
		h.exif = seg
	}
}

// maxICCChunks is libvips' bound on a profile's chunks.
const maxICCChunks = 100

func (h *jpegHeader) app2(seg []byte) {
	if len(seg) <= 14 || !bytes.HasPrefix(seg, []byte("ICC_PROFILE")) {
		return
	}
	n := int(seg[12])
	if n < 1 || n > maxICCChunks {
		return
	}
	if len(h.iccChunks) < n {
		h.iccChunks = append(h.iccChunks, make([][]byte, n-len(h.iccChunks))...)
	}
	h.iccChunks[n-1] = seg[14:]
}

// profile is the embedded ICC profile as libvips assembles it: the chunks
// numbered from 1 up to the first missing one.
func (h *jpegHeader) profile() []byte {
	var p []byte
	for _, c := range h.iccChunks {
		if c == nil {
			break
		}
		p = append(p, c...)
	}
	return p
}
