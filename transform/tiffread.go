package transform

import (
	"encoding/binary"
	"strings"
)

// tiffReader reads the TIFF structure shared by TIFF files and EXIF blocks,
// with every offset bounds-checked: both arrive from strangers.
type tiffReader struct {
	b  []byte
	bo binary.ByteOrder
}

type tiffEntry struct {
	tag, typ uint16
	count    uint32
	raw      []byte // the 4-byte value/offset field
}

// Entries per IFD and IFDs per chain, far above anything real.
const (
	maxIFDEntries = 4096
	maxIFDs       = 10_000
)

func newTIFFReader(b []byte) (*tiffReader, uint32, bool) {
	if len(b) < 8 {
		return nil, 0, false
	}
	var bo binary.ByteOrder
	switch string(b[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return nil, 0, false
	}
	if bo.Uint16(b[2:]) != 42 {
		return nil, 0, false
	}
	return &tiffReader{b: b, bo: bo}, bo.Uint32(b[4:]), true
}

// ifd reads the directory at off and the offset of the next one.
func (t *tiffReader) ifd(off uint32) ([]tiffEntry, uint32, bool) {
	if off < 8 || int64(off)+2 > int64(len(t.b)) {
		return nil, 0, false
	}
	n := int(t.bo.Uint16(t.b[off:]))
	start := int64(off) + 2
	if n > maxIFDEntries || start+int64(n)*12+4 > int64(len(t.b)) {
		return nil, 0, false
	}
	entries := make([]tiffEntry, n)
	for i := range entries {
		e := t.b[start+int64(i)*12:]
		entries[i] = tiffEntry{tag: t.bo.Uint16(e), typ: t.bo.Uint16(e[2:]), count: t.bo.Uint32(e[4:]), raw: e[8:12]}
	}
	return entries, t.bo.Uint32(t.b[start+int64(n)*12:]), true
}

var tiffTypeSize = map[uint16]int64{1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}

// data returns an entry's value bytes, inline or at its offset.
func (t *tiffReader) data(e tiffEntry) ([]byte, bool) {
	size, ok := tiffTypeSize[e.typ]
	if !ok {
		return nil, false
	}
	size *= int64(e.count)
	if size <= 4 {
		return e.raw[:size], true
	}
	off := int64(t.bo.Uint32(e.raw))
	if off+size > int64(len(t.b)) {
		return nil, false
	}
	return t.b[off : off+size], true
}

// uints returns SHORT/LONG values (at most limit of them).
func (t *tiffReader) uints(e tiffEntry, limit int) ([]uint32, bool) {
	d, ok := t.data(e)
	if !ok || (e.typ != 3 && e.typ != 4) {
		return nil, false
	}
	n := min(int(e.count), limit)
	out := make([]uint32, n)
	for i := range out {
		if e.typ == 3 {
			out[i] = uint32(t.bo.Uint16(d[2*i:]))
		} else {
			out[i] = t.bo.Uint32(d[4*i:])
		}
	}
	return out, true
}

func (t *tiffReader) uint(e tiffEntry) (uint32, bool) {
	v, ok := t.uints(e, 1)
	if !ok || len(v) == 0 {
		return 0, false
	}
	return v[0], true
}

// ascii returns printable text, NULs and control bytes dropped, capped.
func (t *tiffReader) ascii(e tiffEntry) string {
	d, ok := t.data(e)
	if !ok || (e.typ != 2 && e.typ != 7) {
		return ""
	}
	var b strings.Builder
	for _, c := range d {
		if c == 0 {
			break
		}
		if c >= 0x20 && c < 0x7F {
			b.WriteByte(c)
		}
		if b.Len() >= 128 {
			break
		}
	}
	return strings.TrimSpace(b.String())
}

func findEntry(entries []tiffEntry, tag uint16) (tiffEntry, bool) {
	for _, e := range entries {
		if e.tag == tag {
			return e, true
		}
	}
	return tiffEntry{}, false
}
