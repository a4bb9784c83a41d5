package transform

/*
#include "vips_bridge.h"
*/
import "C"

import "unsafe"

// pipe is the image being worked on and the context owning every step.
// Animations are one tall image of stacked pages (libvips' convention):
// anything that moves pixels across the page grid runs page by page.
type pipe struct {
	vc *vctx
	im *C.VipsImage
}

func (p *pipe) geom() geometry { return geom(p.im) }

// apply replaces the image with f's result.
func (p *pipe) apply(op string, f func(in *C.VipsImage, out **C.VipsImage) C.int) error {
	in := p.im
	out, err := p.vc.do(op, func(out **C.VipsImage) C.int { return f(in, out) })
	if err != nil {
		return err
	}
	p.im = out
	return nil
}

// perPage runs f on every page and stacks the results again; a still image
// is one page. f may change the page size.
func (p *pipe) perPage(op string, f func(in *C.VipsImage, out **C.VipsImage) C.int) error {
	g := p.geom()
	if g.pages == 1 {
		return p.apply(op, f)
	}
	outs := make([]*C.VipsImage, g.pages)
	for i := range outs {
		page, err := p.vc.do("page", func(out **C.VipsImage) C.int {
			return C.ip_extract_area(p.im, 0, C.int(i*g.pageHeight), C.int(g.width), C.int(g.pageHeight), out)
		})
		if err != nil {
			return err
		}
		if outs[i], err = p.vc.do(op, func(out **C.VipsImage) C.int { return f(page, out) }); err != nil {
			return err
		}
	}
	// A slice of C pointers holds no Go pointers: it may be passed to C.
	joined, err := p.vc.do("arrayjoin", func(out **C.VipsImage) C.int {
		return C.ip_arrayjoin((**C.VipsImage)(unsafe.Pointer(&outs[0])), C.int(len(outs)), out)
	})
	if err != nil {
		return err
	}
	p.im = joined
	ph := C.ip_height(outs[0])
	return p.apply("page-height", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_set_page_height(in, ph, out)
	})
}

// resize scales a still to the plan. A plain image (8-bit sRGB or grey, no
// alpha, no profile) gets the one vips_resize that vips_thumbnail_image
// would run on it, with the same factors, without the thumbnail's other
// steps (each an operation to build, and a line cache), or, decoded into
// memory, the same lanczos3 computed at once under the guard
// (ip_reduce_memory); anything else gets vips_thumbnail_image:
// processing space, premultiplied alpha, profile to sRGB.
func (p *pipe) resize(r resizePlan, icc bool, guard *C.ip_guard) error {
	g := p.geom()
	if !icc && g.pages == 1 && C.ip_is_plain(p.im) != 0 {
		hs, vs := r.shrinkFactors(g.width, g.height)
		if hs == 1 && vs == 1 {
			return nil
		}
		return p.apply("resize", func(in *C.VipsImage, out **C.VipsImage) C.int {
			if rc := C.ip_reduce_memory(in, C.double(hs), C.double(vs), guard, out); rc != 0 || *out != nil {
				return rc
			}
			return C.ip_resize_by(in, C.double(hs), C.double(vs), out)
		})
	}
	return p.apply("thumbnail", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_thumbnail_image(in, C.int(r.width), C.int(r.height), C.int(r.size), cbool(icc), out)
	})
}

// orient turns the stored image upright per its EXIF orientation, then
// records orientation 1 so kept metadata does not rotate it again.
func (p *pipe) orient(o int) error {
	steps := map[int][]func() error{
		2: {p.flop},
		3: {func() error { return p.rotate(180) }},
		4: {p.flip},
		5: {func() error { return p.rotate(90) }, p.flop},
		6: {func() error { return p.rotate(90) }},
		7: {func() error { return p.rotate(270) }, p.flop},
		8: {func() error { return p.rotate(270) }},
	}
	for _, step := range steps[o] {
		if err := step(); err != nil {
			return err
		}
	}
	return p.apply("orientation", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_reset_orientation(in, out)
	})
}

func (p *pipe) rotate(angle int) error {
	return p.perPage("rot", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_rot(in, C.int(angle), out)
	})
}

// flip mirrors top to bottom, page by page.
func (p *pipe) flip() error {
	return p.perPage("flip", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_flip(in, 0, out)
	})
}

// flop mirrors left to right: pages stay in place, no split needed.
func (p *pipe) flop() error {
	return p.apply("flop", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_flip(in, 1, out)
	})
}

// crop keeps a w x h window of every page.
func (p *pipe) crop(x, y, w, h int) error {
	return p.perPage("crop", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_extract_area(in, C.int(x), C.int(y), C.int(w), C.int(h), out)
	})
}

// colour makes the image 8-bit sRGB (greys become RGB).
func (p *pipe) colour() error {
	return p.apply("colourspace", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_to_srgb8(in, 1, out)
	})
}

// background returns the pixel for padding in the image's band layout.
func background(c Color, bands int, transparent bool) []C.double {
	if transparent {
		return make([]C.double, bands)
	}
	px := []C.double{C.double(c.R), C.double(c.G), C.double(c.B)}
	switch bands {
	case 1:
		return px[:1]
	case 2:
		return []C.double{px[0], 255}
	case 4:
		return append(px, 255)
	}
	return px
}
