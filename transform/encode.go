package transform

/*
#include "vips_bridge.h"
*/
import "C"

import "unsafe"

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
