package transform

/*
#include "vips_bridge.h"
*/
import "C"

import "unsafe"

// encode saves the image; metadata is stripped unless strip=false.
func encode(im *C.VipsImage, j job) ([]byte, error) {
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
	if C.ip_save(im, &opts, &buf, &n) != 0 {
		return nil, &vipsError{op: "save " + j.out.String(), text: takeVipsError()}
	}
	defer C.ip_free(buf)
	out := C.GoBytes(buf, C.int(n))
	if j.out == fmtWebP && !s.KeepMetadata {
		out = stripWebP(out)
	}
	return out, nil
}
