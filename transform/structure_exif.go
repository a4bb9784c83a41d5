package transform

import "bytes"

// checkEXIF walks an EXIF block's directories as libexif will, before it
// does: libexif follows every pointer to a sub-directory it meets, so an
// IFD0 of 8,000 entries all pointing back at IFD0 cost it 3.4 s a parse, on
// the upload's request path (the probe) and again in the worker. A pointer
// tag given twice in one directory, or a directory reached twice, is no
// camera's doing: the block is refused as corrupt. What this reader cannot
// make sense of is left to libexif, which ignores a damaged block.
func checkEXIF(raw []byte) error {
	t, off, ok := newTIFFReader(bytes.TrimPrefix(raw, []byte("Exif\x00\x00")))
	if !ok {
		return nil
	}
	seen := map[uint32]bool{}
	var walk func(off uint32, depth int) error
	walk = func(off uint32, depth int) error {
		if seen[off] {
			return corruptf("exif directory at %d is reached twice", off)
		}
		seen[off] = true
		if int64(off)+2 <= int64(len(t.b)) && int(t.bo.Uint16(t.b[off:])) > maxIFDEntries {
			return corruptf("exif directory at %d has %d entries", off, t.bo.Uint16(t.b[off:]))
		}
		entries, _, ok := t.ifd(off)
		if !ok {
			return nil
		}
		pointers := map[uint16]bool{}
		for _, e := range entries {
			if e.tag != tagExifIFD && e.tag != tagGPSIFD && e.tag != tagInteropIFD {
				continue
			}
			if pointers[e.tag] {
				return corruptf("exif directory at %d gives its pointer %#04x twice", off, e.tag)
			}
			pointers[e.tag] = true
			if sub, ok := t.uint(e); ok && depth < 4 {
				if err := walk(sub, depth+1); err != nil {
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
