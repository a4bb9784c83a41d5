package transform

import (
	"errors"
	"fmt"
)

// layout is what the cheap structural walk learns without decoding pixels.
// Zero fields are unknown: libvips' header fills them in later.
type layout struct {
	width, height int
	frames        int
	scans         int // of a JPEG: more than one when progressive
	jpeg          jpegHeader
}

// Structural problems; Probe turns them into 422s.
var (
	errTruncated = errors.New("truncated")
	errCorrupt   = errors.New("corrupt")
)

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, args...))
}

func truncatedf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errTruncated, fmt.Sprintf(format, args...))
}

// walkStructure checks that the container is whole (end markers present,
// chunk lengths inside the data) and reads dimensions where that is cheap.
// maxFrames stops a GIF walk early: counting further is pointless.
func walkStructure(f format, b []byte, maxFrames int) (layout, error) {
	switch f {
	case fmtJPEG:
		return walkJPEG(b)
	case fmtPNG:
		return walkPNG(b)
	case fmtGIF:
		return walkGIF(b, maxFrames)
	case fmtWebP:
		return walkWebP(b)
	case fmtTIFF:
		return walkTIFF(b)
	case fmtAVIF, fmtHEIF:
		return walkISOBMFF(b)
	case fmtPDF:
		return walkPDF(b)
	}
	return layout{}, nil
}
