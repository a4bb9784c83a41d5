package transform

/*
#include "vips_bridge.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"unsafe"
)

// encode saves the image under the guard; metadata is stripped unless
// strip=false. The encoded bytes are copied once into Go memory.
func encode(im *C.VipsImage, j job, g *C.ip_guard) ([]byte, error) {
	s := j.spec
	opts := C.ip_save_options{
		format:      C.int(j.out),
		quality:     C.int(s.quality()),
		lossless:    cbool(s.Lossless),
		progressive: cbool(s.Progressive),
		strip:       cbool(!s.KeepMetadata),
	}
	var buf unsafe.Pointer
	var n C.size_t
	if C.ip_save_guarded(im, g, &opts, &buf, &n) != 0 {
		return nil, &vipsError{op: "save " + j.out.String(), text: takeVipsError()}
	}
	defer C.ip_free(buf)
	out := C.GoBytes(buf, C.int(n))
	if j.out == fmtWebP && !s.KeepMetadata {
		out = stripWebP(out)
	}
	return out, nil
}

// checkEncoded reads back the header of what libheif wrote. Its HEVC
// encoder (x265) refuses some shapes, 4500x16 or 16x8193 for example,
// and libheif then writes a file naming an image it does not hold, with no
// error (libvips' own heifsave included). The header costs little beside
// an AV1 or HEVC encode, and is only read for those.
func (e *Engine) checkEncoded(out []byte, f format, geo geometry) error {
	if f != fmtHEIF && f != fmtAVIF {
		return nil
	}
	err := errors.New("wrote nothing")
	if len(out) > 0 {
		var pin runtime.Pinner
		defer pin.Unpin()
		var vc vctx
		defer vc.close()
		var im *C.VipsImage
		if im, err = header(&vc, &pin, out, f); err == nil {
			if g := geom(im); g.width != geo.width || g.pageHeight != geo.pageHeight {
				err = fmt.Errorf("wrote %dx%d", g.width, g.pageHeight)
			}
		}
	}
	if err != nil {
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeUnencodable,
			Message: fmt.Sprintf("the %s encoder cannot write a %dx%d image: try another size or format", f, geo.width, geo.pageHeight), Err: err}
	}
	return nil
}
