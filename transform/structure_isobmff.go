package transform

import (
	"bytes"
	"encoding/binary"
)

// walkISOBMFF checks that the top-level boxes of an AVIF/HEIF file fit in
// the data and takes the largest image spatial extent (ispe) as the size:
// the primary image, or the grid it is made of, is never smaller than its
// tiles or thumbnails, so the largest is a safe bound for the limits.
func walkISOBMFF(b []byte) (layout, error) {
	var l layout
	var meta []byte
	err := eachBox(b, func(typ string, body []byte) {
		if typ == "meta" && len(body) > 4 {
			meta = body[4:] // full box: version and flags first
		}
	})
	if err != nil {
		return l, err
	}
	if meta == nil {
		return l, corruptf("heif has no meta box")
	}
	// iprp > ipco > ispe; the nesting is fixed, so look there only.
	_ = eachBox(meta, func(typ string, body []byte) {
		if typ != "iprp" {
			return
		}
		_ = eachBox(body, func(typ string, body []byte) {
			if typ != "ipco" {
				return
			}
			_ = eachBox(body, func(typ string, body []byte) {
				if typ == "ispe" && len(body) >= 12 {
					w := binary.BigEndian.Uint32(body[4:])
					h := binary.BigEndian.Uint32(body[8:])
					if uint64(w)*uint64(h) > uint64(l.width)*uint64(l.height) && w < 1<<30 && h < 1<<30 {
						l.width, l.height = int(w), int(h)
					}
				}
			})
		})
	})
	return l, nil
}

// eachBox walks one level of boxes; a box running past the data is a cut
// file.
func eachBox(b []byte, fn func(typ string, body []byte)) error {
	for pos := int64(0); pos < int64(len(b)); {
		if pos+8 > int64(len(b)) {
			return truncatedf("box header runs past the end")
		}
		size := int64(binary.BigEndian.Uint32(b[pos:]))
		typ := string(b[pos+4 : pos+8])
		hdr := int64(8)
		switch size {
		case 0:
			size = int64(len(b)) - pos
		case 1:
			if pos+16 > int64(len(b)) {
				return truncatedf("box header runs past the end")
			}
			big := binary.BigEndian.Uint64(b[pos+8:])
			if big > 1<<40 {
				return corruptf("box %q of %d bytes", typ, big)
			}
			size, hdr = int64(big), 16
		}
		if size < hdr {
			return corruptf("box %q of %d bytes", typ, size)
		}
		if pos+size > int64(len(b)) {
			return truncatedf("box %q runs past the end", typ)
		}
		fn(typ, b[pos+hdr:pos+size])
		pos += size
	}
	return nil
}

// walkPDF wants the %%EOF marker near the end, where every writer puts it.
func walkPDF(b []byte) (layout, error) {
	tail := b[max(0, len(b)-2048):]
	if !bytes.Contains(tail, []byte("%%EOF")) {
		return layout{}, truncatedf("pdf has no %%%%EOF marker")
	}
	return layout{}, nil
}
