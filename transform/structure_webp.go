package transform

import "encoding/binary"

// walkWebP checks the RIFF length against the data, follows the chunks and
// reads the canvas (VP8X), or the frame size of a simple lossy (VP8) or
// lossless (VP8L) file. Animation frames (ANMF) are counted.
func walkWebP(b []byte) (layout, error) {
	var l layout
	riff := int64(binary.LittleEndian.Uint32(b[4:])) + 8
	if riff > int64(len(b)) {
		return l, truncatedf("webp is shorter than its RIFF length")
	}
	end := int(riff)
	pos := 12
	for pos+8 <= end {
		typ := string(b[pos : pos+4])
		n := int64(binary.LittleEndian.Uint32(b[pos+4:]))
		data := int64(pos + 8)
		if data+n > int64(end) {
			return l, truncatedf("webp chunk %q runs past the end", typ)
		}
		c := b[data : data+n]
		switch typ {
		case "VP8X":
			if len(c) < 10 {
				return l, corruptf("short VP8X chunk")
			}
			l.width = 1 + int(uint32(c[4])|uint32(c[5])<<8|uint32(c[6])<<16)
			l.height = 1 + int(uint32(c[7])|uint32(c[8])<<8|uint32(c[9])<<16)
		case "VP8 ":
			if l.width == 0 {
				if len(c) < 10 || c[3] != 0x9D || c[4] != 0x01 || c[5] != 0x2A {
					return l, corruptf("bad VP8 frame header")
				}
				l.width = int(binary.LittleEndian.Uint16(c[6:]) & 0x3FFF)
				l.height = int(binary.LittleEndian.Uint16(c[8:]) & 0x3FFF)
			}
		case "VP8L":
			if l.width == 0 {
				if len(c) < 5 || c[0] != 0x2F {
					return l, corruptf("bad VP8L header")
				}
				v := binary.LittleEndian.Uint32(c[1:])
				l.width = int(v&0x3FFF) + 1
				l.height = int(v>>14&0x3FFF) + 1
			}
		case "ANMF":
			l.frames++
		case "EXIF":
			if err := checkEXIF(c); err != nil {
				return l, err
			}
		}
		pos = int(data + n + n&1) // chunks are padded to even sizes
	}
	if l.width == 0 || l.height == 0 {
		return l, corruptf("webp has no image")
	}
	return l, nil
}
