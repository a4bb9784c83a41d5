package transform

import "encoding/binary"

// walkGIF follows the block structure without LZW-decoding anything:
// extension and image blocks are chains of length-prefixed sub-blocks. It
// counts frames and wants the trailer byte (0x3B) at the end.
func walkGIF(b []byte, maxFrames int) (layout, error) {
	var l layout
	if len(b) < 13 {
		return l, truncatedf("gif ends inside its header")
	}
	l.width = int(binary.LittleEndian.Uint16(b[6:]))
	l.height = int(binary.LittleEndian.Uint16(b[8:]))
	pos := 13
	if flags := b[10]; flags&0x80 != 0 {
		pos += 3 << ((flags & 7) + 1)
	}
	skipSubBlocks := func() bool {
		for pos < len(b) {
			n := int(b[pos])
			pos += 1 + n
			if n == 0 {
				return pos <= len(b)
			}
		}
		return false
	}
	for {
		if pos >= len(b) {
			return l, truncatedf("gif has no trailer")
		}
		switch b[pos] {
		case 0x3B:
			if l.frames == 0 {
				return l, corruptf("gif has no image")
			}
			return l, nil
		case 0x21: // extension: label, then sub-blocks
			pos += 2
			if !skipSubBlocks() {
				return l, truncatedf("gif extension runs past the end")
			}
		case 0x2C: // image descriptor, optional local table, LZW size, data
			if pos+10 > len(b) {
				return l, truncatedf("gif image descriptor runs past the end")
			}
			left := int(binary.LittleEndian.Uint16(b[pos+1:]))
			top := int(binary.LittleEndian.Uint16(b[pos+3:]))
			w := int(binary.LittleEndian.Uint16(b[pos+5:]))
			h := int(binary.LittleEndian.Uint16(b[pos+7:]))
			// libnsgif grows the canvas to hold frames that overhang it.
			l.width, l.height = max(l.width, left+w), max(l.height, top+h)
			flags := b[pos+9]
			pos += 10
			if flags&0x80 != 0 {
				pos += 3 << ((flags & 7) + 1)
			}
			pos++ // LZW minimum code size
			if pos > len(b) || !skipSubBlocks() {
				return l, truncatedf("gif image data runs past the end")
			}
			l.frames++
			if l.frames > maxFrames {
				return l, nil // enough to refuse; the caller checks
			}
		default:
			return l, corruptf("unknown gif block 0x%02x at %d", b[pos], pos)
		}
	}
}
