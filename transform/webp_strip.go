package transform

import "encoding/binary"

// stripWebP removes EXIF, XMP and ICC chunks from a WebP file and clears
// their VP8X flags. libvips 8.14.1's webpsave ignores strip (it carries the
// input's EXIF, GPS included, into the output), so metadata is removed
// here, at the container level, without touching the image data. It works
// in place: b is the caller's own copy of the encoder's output, and a file
// without such chunks (the usual case) is returned as it is.
func stripWebP(b []byte) []byte {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return b
	}
	end := min(len(b), int(binary.LittleEndian.Uint32(b[4:]))+8)
	// Check the whole chunk list first: a damaged file is left alone.
	found := false
	for pos := 12; pos+8 <= end; {
		n := int(binary.LittleEndian.Uint32(b[pos+4:]))
		next := pos + 8 + n + n&1
		if n < 0 || next > end {
			return b // not ours to repair
		}
		switch string(b[pos : pos+4]) {
		case "EXIF", "XMP ", "ICCP":
			found = true
		}
		pos = next
	}
	if !found {
		return b
	}
	w, vp8x := 12, -1
	for pos := 12; pos+8 <= end; {
		typ := string(b[pos : pos+4])
		n := int(binary.LittleEndian.Uint32(b[pos+4:]))
		next := pos + 8 + n + n&1
		switch typ {
		case "EXIF", "XMP ", "ICCP":
		default:
			if typ == "VP8X" && n >= 10 {
				vp8x = w + 8
			}
			w += copy(b[w:], b[pos:next]) // w <= pos: moves data down
		}
		pos = next
	}
	if vp8x >= 0 {
		b[vp8x] &^= 0x20 | 0x08 | 0x04 // ICC, EXIF, XMP
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(w-8))
	return b[:w]
}
