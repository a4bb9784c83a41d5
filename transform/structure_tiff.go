package transform

// TIFF tags used by the walk.
const (
	tagImageWidth      = 256
	tagImageLength     = 257
	tagStripOffsets    = 273
	tagStripByteCounts = 279
	tagTileOffsets     = 324
	tagTileByteCounts  = 325
)

// walkTIFF reads the first directory's size, checks that its strips or
// tiles lie inside the file, and counts directories (pages).
func walkTIFF(b []byte) (layout, error) {
	var l layout
	t, off, ok := newTIFFReader(b)
	if !ok {
		return l, corruptf("bad tiff header")
	}
	entries, next, ok := t.ifd(off)
	if !ok {
		return l, truncatedf("tiff directory runs past the end")
	}
	for _, e := range entries {
		switch e.tag {
		case tagImageWidth:
			v, _ := t.uint(e)
			l.width = int(v)
		case tagImageLength:
			v, _ := t.uint(e)
			l.height = int(v)
		}
	}
	if l.width == 0 || l.height == 0 {
		return l, corruptf("tiff is %dx%d", l.width, l.height)
	}
	if err := checkTIFFData(t, entries, tagStripOffsets, tagStripByteCounts); err != nil {
		return l, err
	}
	if err := checkTIFFData(t, entries, tagTileOffsets, tagTileByteCounts); err != nil {
		return l, err
	}
	l.frames = 1
	seen := map[uint32]bool{off: true}
	for next != 0 && !seen[next] {
		if l.frames == maxIFDs {
			// libtiff counts the pages at open: 400,000 of them in 45 MB
			// held the upload's request for 4 s.
			return l, corruptf("tiff chains more than %d directories", maxIFDs)
		}
		seen[next] = true
		if _, next, ok = t.ifd(next); !ok {
			break // a broken later page: libvips only reads the first
		}
		l.frames++
	}
	return l, nil
}

// checkTIFFData wants every offset+count pair inside the file.
func checkTIFFData(t *tiffReader, entries []tiffEntry, offTag, countTag uint16) error {
	oe, ok1 := findEntry(entries, offTag)
	ce, ok2 := findEntry(entries, countTag)
	if !ok1 || !ok2 {
		return nil
	}
	offs, ok1 := t.uints(oe, 1<<20)
	counts, ok2 := t.uints(ce, 1<<20)
	if !ok1 || !ok2 {
		return truncatedf("tiff strip table runs past the end")
	}
	for i := range min(len(offs), len(counts)) {
		if int64(offs[i])+int64(counts[i]) > int64(len(t.b)) {
			return truncatedf("tiff image data runs past the end")
		}
	}
	return nil
}
