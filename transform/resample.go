package transform

/*
#include "vips_bridge.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// reduceBoth reduces a w x h image of bands 8-bit samples, held in memory
// as a decode leaves it, by hs across and vs down, with ip_reduce_memory
// (ours: nil when it declined) and with libvips' reducev and reduceh
// (ip_resize_by), for tests (cgo is not allowed in test files). cancelled
// raises the guard of ip_reduce_memory first.
func reduceBoth(pix []byte, w, h, bands int, hs, vs float64, cancelled bool) (ours, libvips *directImage, err error) {
	if err := startVips(); err != nil {
		return nil, nil, err
	}
	g := (*C.ip_guard)(C.calloc(1, C.sizeof_ip_guard))
	defer C.free(unsafe.Pointer(g))
	g.deadline = 1 << 62
	if cancelled {
		C.ip_guard_cancel(g)
	}
	in := C.vips_image_new_from_memory_copy(unsafe.Pointer(&pix[0]), C.size_t(len(pix)),
		C.int(w), C.int(h), C.int(bands), C.VIPS_FORMAT_UCHAR)
	if in == nil {
		return nil, nil, &vipsError{op: "new_from_memory_copy", text: takeVipsError()}
	}
	defer C.ip_unref(in)
	var out *C.VipsImage
	if C.ip_reduce_memory(in, C.double(hs), C.double(vs), g, &out) != 0 {
		return nil, nil, &vipsError{op: "reduce_memory", text: takeVipsError()}
	}
	if out != nil {
		defer C.ip_unref(out)
		if ours, err = pixelsOf(out); err != nil {
			return nil, nil, err
		}
	}
	var ref *C.VipsImage
	if C.ip_resize_by(in, C.double(hs), C.double(vs), &ref) != 0 {
		return nil, nil, &vipsError{op: "resize_by", text: takeVipsError()}
	}
	defer C.ip_unref(ref)
	libvips, err = pixelsOf(ref)
	return ours, libvips, err
}

// pixelsOf computes im into Go memory.
func pixelsOf(im *C.VipsImage) (*directImage, error) {
	var n C.size_t
	p := C.vips_image_write_to_memory(im, &n)
	if p == nil {
		return nil, &vipsError{op: "write_to_memory", text: takeVipsError()}
	}
	defer C.ip_free(p)
	d := &directImage{pix: C.GoBytes(p, C.int(n)), width: int(C.ip_width(im)),
		height: int(C.ip_height(im)), bands: int(C.ip_bands(im))}
	if len(d.pix) != d.width*d.height*d.bands {
		return nil, fmt.Errorf("%d bytes for %dx%dx%d", len(d.pix), d.width, d.height, d.bands)
	}
	return d, nil
}
