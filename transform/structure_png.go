package transform

import "encoding/binary"

// maxPNGChunks bounds the walk: real files have tens of chunks, a file of
// millions of empty chunks is an attack on the walker itself.
const maxPNGChunks = 1 << 20

// walkPNG reads IHDR and follows the chunk lengths to IEND. CRCs are left
// to libpng.
func walkPNG(b []byte) (layout, error) {
	var l layout
	pos := 8
	for i := 0; i < maxPNGChunks; i++ {
		if pos+8 > len(b) {
			return l, truncatedf("png has no IEND chunk")
		}
		n := int64(binary.BigEndian.Uint32(b[pos:]))
		typ := string(b[pos+4 : pos+8])
		end := int64(pos) + 12 + n
		if n > 1<<31-1 {
			return l, corruptf("png chunk length %d", n)
		}
		if end > int64(len(b)) {
			return l, truncatedf("png chunk %q runs past the end", typ)
		}
		if i == 0 {
			if typ != "IHDR" || n < 13 {
				return l, corruptf("png does not start with IHDR")
			}
			w := binary.BigEndian.Uint32(b[pos+8:])
			h := binary.BigEndian.Uint32(b[pos+12:])
			if w == 0 || h == 0 || w > 1<<31-1 || h > 1<<31-1 {
				return l, corruptf("png is %dx%d", w, h)
			}
			l.width, l.height = int(w), int(h)
		}
		if typ == "eXIf" {
			if err := checkEXIF(b[pos+8 : end-4]); err != nil {
				return l, err
			}
		}
		if typ == "IEND" {
			return l, nil
		}
		pos = int(end)
	}
	return l, corruptf("png has too many chunks")
}
