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
			if l.width == 0 || l.height == 0 {
				return l, corruptf("jpeg frame is %dx%d", l.width, l.height)
			}
		case m == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")):
			if err := checkEXIF(seg); err != nil {
				return l, err
			}
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
