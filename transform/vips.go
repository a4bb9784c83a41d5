package transform

/*
#cgo pkg-config: vips libjpeg
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lm
#include "vips_bridge.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// vips_thumbnail's "size" argument.
const (
	sizeBoth  = C.VIPS_SIZE_BOTH
	sizeDown  = C.VIPS_SIZE_DOWN
	sizeForce = C.VIPS_SIZE_FORCE
	// unbounded is the thumbnail target for a free dimension.
	unbounded = C.VIPS_MAX_COORD
)

var (
	startOnce sync.Once
	startErr  error
)

// startVips initialises libvips once per process, installs the GLib log
// routing and blocks every loader we do not sniff for ourselves.
func startVips() error {
	startOnce.Do(func() {
		if C.ip_startup() != 0 {
			startErr = fmt.Errorf("transform: libvips failed to start: %s", takeVipsError())
		}
	})
	return startErr
}

// mallocArenas is how many arenas glibc's malloc has made in this process,
// or -1 where that cannot be read. Tests check the limit startVips sets;
// cgo is not allowed in test files.
func mallocArenas() int { return int(C.ip_malloc_arenas()) }

// vectorEnabled reports whether libvips runs its vector code, and
// vectorIsORC whether that code is ORC's (libvips before 8.15), which
// startVips turns off: see ip_startup.
func vectorEnabled() bool { return C.ip_vector_enabled() != 0 }
func vectorIsORC() bool   { return C.ip_vector_is_orc() != 0 }

// configureVips sets process-wide libvips knobs: the last Engine wins, and
// vector loaders once allowed stay allowed (the Engine still refuses them
// by its own config before libvips sees the bytes).
func configureVips(cfg Config) {
	C.ip_configure(C.int(cfg.VipsConcurrency), C.int(cfg.VipsCacheMaxOps))
	C.ip_allow_vector(cbool(cfg.AllowSVG), cbool(cfg.AllowPDF))
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// vipsError is a libvips failure: op names our step, text is libvips' own
// message, for the log only.
type vipsError struct {
	op   string
	text string
}

func (e *vipsError) Error() string { return "vips " + e.op + ": " + e.text }

func takeVipsError() string {
	p := C.ip_error()
	defer C.free(unsafe.Pointer(p))
	return strings.TrimSpace(C.GoString(p))
}

// vctx owns every image made while handling one input: libvips operations
// take their own references, so all are dropped together at the end.
type vctx struct{ imgs []*C.VipsImage }

func (c *vctx) close() {
	for _, p := range c.imgs {
		C.ip_unref(p)
	}
	c.imgs = nil
}

// do runs one bridge call that makes an image and keeps the result.
func (c *vctx) do(op string, f func(out **C.VipsImage) C.int) (*C.VipsImage, error) {
	var out *C.VipsImage
	if f(&out) != 0 {
		if out != nil {
			C.ip_unref(out)
		}
		return nil, &vipsError{op: op, text: takeVipsError()}
	}
	return c.own(out), nil
}

// own keeps an image made outside do.
func (c *vctx) own(im *C.VipsImage) *C.VipsImage {
	c.imgs = append(c.imgs, im)
	return im
}

// geometry of an image as the pipeline sees it: pages stacked vertically.
type geometry struct{ width, height, pageHeight, pages int }

func geom(im *C.VipsImage) geometry {
	w, h := int(C.ip_width(im)), int(C.ip_height(im))
	ph := int(C.ip_page_height(im))
	if ph <= 0 || h%ph != 0 {
		ph = h
	}
	return geometry{width: w, height: h, pageHeight: ph, pages: h / ph}
}

func hasAlpha(im *C.VipsImage) bool { return C.ip_has_alpha(im) != 0 }

func interpretation(im *C.VipsImage) string { return C.GoString(C.ip_interpretation(im)) }

// blob returns a copy of a metadata blob (exif-data, icc-profile-data).
func blob(im *C.VipsImage, name string) []byte {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var n C.size_t
	p := C.ip_blob(im, cname, &n)
	if p == nil || n == 0 {
		return nil
	}
	return C.GoBytes(p, C.int(n))
}
