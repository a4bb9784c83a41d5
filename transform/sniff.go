package transform

import (
	"bytes"
	"encoding/binary"
)

// format is an input or output image format. The order matches enum
// ip_format in vips_bridge.h.
type format int

const (
	fmtUnknown format = iota
	fmtJPEG
	fmtPNG
	fmtWebP
	fmtGIF
	fmtTIFF
	fmtAVIF
	fmtHEIF
	fmtSVG
	fmtPDF
)

var formatNames = [...]string{"", "jpeg", "png", "webp", "gif", "tiff", "avif", "heif", "svg", "pdf"}

func (f format) String() string { return formatNames[f] }

func formatByName(name string) format {
	for i, n := range formatNames {
		if n == name && i > 0 {
			return format(i)
		}
	}
	return fmtUnknown
}

// animatable formats keep every frame when they are both input and output.
func (f format) animatable() bool { return f == fmtGIF || f == fmtWebP }

// hasAlphaChannel reports whether the output format can carry transparency.
func (f format) hasAlphaChannel() bool { return f != fmtJPEG }

// maxDimension is the encoder's own limit.
func (f format) maxDimension() int {
	if f == fmtWebP {
		return 16383
	}
	return maxCoord
}

// sniff tells the format from the first bytes only: names and declared
// content types are never trusted.
func sniff(b []byte) format {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return fmtJPEG
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return fmtPNG
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return fmtGIF
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return fmtWebP
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return fmtTIFF
	case bytes.HasPrefix(b, []byte("%PDF-")):
		return fmtPDF
	case len(b) >= 12 && string(b[4:8]) == "ftyp":
		return sniffFtyp(b)
	case looksLikeSVG(b):
		return fmtSVG
	}
	return fmtUnknown
}

// sniffFtyp reads the ISO-BMFF ftyp box: AVIF if any brand says so, HEIF
// for the HEVC and generic image brands.
func sniffFtyp(b []byte) format {
	size := int(binary.BigEndian.Uint32(b))
	if size < 16 || size > len(b) || size > 4096 {
		size = min(len(b), 4096)
	}
	brands := [][]byte{b[8:12]}
	for off := 16; off+4 <= size; off += 4 {
		brands = append(brands, b[off:off+4])
	}
	heif := false
	for _, br := range brands {
		switch string(br) {
		case "avif", "avis":
			return fmtAVIF
		case "heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1":
			heif = true
		}
	}
	if heif {
		return fmtHEIF
	}
	return fmtUnknown
}

// looksLikeSVG accepts XML text whose first kilobytes open an <svg element.
func looksLikeSVG(b []byte) bool {
	head := b[:min(len(b), 4096)]
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	head = bytes.TrimLeft(head, " \t\r\n")
	if len(head) == 0 || head[0] != '<' {
		return false
	}
	return bytes.Contains(head, []byte("<svg"))
}
