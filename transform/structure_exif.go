package transform

import "bytes"

// checkEXIF walks an EXIF block's directories as libexif will, before it
// does: libexif follows every pointer to a sub-directory it meets, so an
// IFD0 of 8,000 entries all pointing back at IFD0 cost it 3.4 s a parse, on
// the upload's request path (the probe) and again in the worker. A pointer
// tag given twice in one directory, or a directory reached twice, is no
// camera's doing: the block is refused as corrupt. Everything else (a
// pointer of 0 or past the end, a directory cut short) is left to libexif,
// which ignores what it cannot read.
func checkEXIF(raw []byte) error {
	t, off, ok := newTIFFReader(bytes.TrimPrefix(raw, []byte("Exif\x00\x00")))
	if !ok {
		return nil
	}
	seen := map[uint32]bool{}
	var walk func(off uint32, depth int) error
	walk = func(off uint32, depth int) error {
		if off < 8 || int64(off)+2 > int64(len(t.b)) || depth > 4 {
			return nil
		}
		if seen[off] {
			return corruptf("exif directory at %d is reached twice", off)
		}
		seen[off] = true
		// Entries as far as the block holds them: the count is not
		// bounded here, since the harm is in the pointers.
		start := int64(off) + 2
		n := min(int64(t.bo.Uint16(t.b[off:])), (int64(len(t.b))-start)/12)
		pointers := map[uint16]bool{}
		for i := range n {
			e := t.b[start+12*i:]
			tag, typ := t.bo.Uint16(e), t.bo.Uint16(e[2:])
			if tag != tagExifIFD && tag != tagGPSIFD && tag != tagInteropIFD {
				continue
			}
			if pointers[tag] {
				return corruptf("exif directory at %d gives its pointer %#04x twice", off, tag)
			}
			pointers[tag] = true
			if typ == 4 || typ == 13 { // LONG or IFD: the offset is the value
				if err := walk(t.bo.Uint32(e[8:]), depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(off, 0)
}

// tagInteropIFD points at the interoperability directory.
const tagInteropIFD = 0xA005
