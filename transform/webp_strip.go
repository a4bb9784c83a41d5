package transform

import "encoding/binary"

// stripWebP removes EXIF, XMP and ICC chunks from a WebP file and clears
// their VP8X flags. libvips 8.14.1's webpsave ignores strip (it carries the
// input's EXIF, GPS included, into the output), so metadata is removed
// here, at the container level, without touching the image data.
func stripWebP(b []byte) []byte {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return b
	}
	end := min(len(b), int(binary.LittleEndian.Uint32(b[4:]))+8)
	out := make([]byte, 12, len(b))
	copy(out, b[:12])
	vp8x := -1
	for pos := 12; pos+8 <= end; {
		typ := string(b[pos : pos+4])
		n := int(binary.LittleEndian.Uint32(b[pos+4:]))
		next := pos + 8 + n + n&1
		if n < 0 || next > end {
			return b // not ours to repair
		}
		switch typ {
		case "EXIF", "XMP ", "ICCP":
		default:
			if typ == "VP8X" && n >= 10 {
				vp8x = len(out) + 8
			}
			out = append(out, b[pos:next]...)
		}
		pos = next
	}
	if vp8x >= 0 {
		out[vp8x] &^= 0x20 | 0x08 | 0x04 // ICC, EXIF, XMP
	}
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}
