package transform

import (
	"encoding/binary"
	"strings"
	"unicode/utf16"
)

// iccUsable reports a profile lcms can read: at least a header and tag
// count, with the 'acsp' signature. An image with any other is rendered as
// if it had none (see ip_has_icc).
func iccUsable(p []byte) bool { return len(p) >= 132 && string(p[36:40]) == "acsp" }

// iccDescription returns the profile's description ('desc' tag): text in a
// v2 profile, the first (preferably English) record of a v4 'mluc'.
func iccDescription(p []byte) string {
	if len(p) < 132 {
		return ""
	}
	n := int(binary.BigEndian.Uint32(p[128:]))
	for i := 0; i < n && i < 1024; i++ {
		e := 132 + 12*i
		if e+12 > len(p) {
			return ""
		}
		if string(p[e:e+4]) != "desc" {
			continue
		}
		off := int64(binary.BigEndian.Uint32(p[e+4:]))
		size := int64(binary.BigEndian.Uint32(p[e+8:]))
		if off+size > int64(len(p)) || size < 12 {
			return ""
		}
		return cleanText(iccText(p[off : off+size]))
	}
	return ""
}

func iccText(t []byte) string {
	switch string(t[:4]) {
	case "desc":
		n := int64(binary.BigEndian.Uint32(t[8:]))
		if 12+n > int64(len(t)) {
			return ""
		}
		return strings.TrimRight(string(t[12:12+n]), "\x00")
	case "mluc":
		if len(t) < 16 {
			return ""
		}
		count := int(binary.BigEndian.Uint32(t[8:]))
		recSize := int(binary.BigEndian.Uint32(t[12:]))
		if recSize < 12 {
			return ""
		}
		best := ""
		for i := 0; i < count && i < 64; i++ {
			r := 16 + i*recSize
			if r+12 > len(t) {
				break
			}
			n := int64(binary.BigEndian.Uint32(t[r+4:]))
			off := int64(binary.BigEndian.Uint32(t[r+8:]))
			if off+n > int64(len(t)) || n%2 != 0 {
				continue
			}
			u := make([]uint16, n/2)
			for j := range u {
				u[j] = binary.BigEndian.Uint16(t[off+int64(2*j):])
			}
			s := string(utf16.Decode(u))
			if best == "" || string(t[r:r+2]) == "en" {
				best = s
			}
			if string(t[r:r+2]) == "en" {
				break
			}
		}
		return best
	}
	return ""
}

// cleanText keeps printable characters, at most 128 of them.
func cleanText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 0x20 && r != 0x7F && r != 0xFFFD {
			b.WriteRune(r)
		}
		if b.Len() >= 128 {
			break
		}
	}
	return strings.TrimSpace(b.String())
}
