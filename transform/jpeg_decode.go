package transform

/*
#include "vips_bridge.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// directMax bounds the pixels of a JPEG decoded straight into memory
// (ip_jpeg_decode): a larger one, say a photo converted at full size,
// goes through libvips' lazy loader, which holds a few lines at a time.
// 16 MiB is 5.5 megapixels of RGB, enough for every thumbnail and
// preview a DCT scale brings within reach.
const directMax = 16 << 20

// load decodes the input for decode's own extract and resize and returns
// the scale it decoded at, in eighths. A JPEG goes to libjpeg, straight
// into memory at the job's scale, when ip_jpeg_decode takes it: on a small
// image that costs a third less than libvips' loader, whose lazy machinery
// is built for images too large to hold. Everything else, and a JPEG whose
// metadata is kept, goes to libvips, at the nearest of its shrinks.
func (e *Engine) load(p *pipe, buf unsafe.Pointer, n C.size_t, j job, all C.int, g *C.ip_guard) (int, error) {
	if j.src.format == fmtJPEG && !j.spec.KeepMetadata {
		var im *C.VipsImage
		if C.ip_jpeg_decode(buf, n, C.int(j.scale), cbool(j.src.icc), directMax, g, &im) != 0 {
			return 0, &vipsError{op: "load", text: takeVipsError()}
		}
		if im != nil {
			p.im = p.vc.own(im)
			return j.scale, nil
		}
	}
	shrink := vipsShrink(j.scale)
	im, err := p.vc.do("load", func(out **C.VipsImage) C.int {
		return C.ip_load(buf, n, C.int(j.src.format), all, C.int(shrink), out)
	})
	if err != nil {
		return 0, err
	}
	p.im = im
	return 8 / shrink, nil
}

// directImage is what ip_jpeg_decode made, copied out for tests (cgo is
// not allowed in test files).
type directImage struct {
	pix                  []byte
	width, height, bands int
	interpretation       string
	icc                  bool
}

// decodeDirect runs ip_jpeg_decode alone, under a guard raised already
// if cancelled: nil when it declined.
func decodeDirect(data []byte, eighths int, icc bool, maxBytes int, cancelled bool) (*directImage, error) {
	if err := startVips(); err != nil {
		return nil, err
	}
	g := (*C.ip_guard)(C.calloc(1, C.sizeof_ip_guard))
	defer C.free(unsafe.Pointer(g))
	g.deadline = 1 << 62
	if cancelled {
		C.ip_guard_cancel(g)
	}
	var im *C.VipsImage
	if C.ip_jpeg_decode(unsafe.Pointer(&data[0]), C.size_t(len(data)), C.int(eighths), cbool(icc), C.size_t(maxBytes), g, &im) != 0 {
		if C.ip_guard_fired(g) == 0 {
			return nil, fmt.Errorf("ip_jpeg_decode failed without the guard: %s", takeVipsError())
		}
		return nil, &vipsError{op: "load", text: takeVipsError()}
	}
	if im == nil {
		return nil, nil
	}
	defer C.ip_unref(im)
	d, err := pixelsOf(im)
	if err != nil {
		return nil, err
	}
	d.interpretation, d.icc = interpretation(im), C.ip_has_icc(im) != 0
	return d, nil
}
