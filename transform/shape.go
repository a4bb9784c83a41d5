package transform

/*
#include "vips_bridge.h"
*/
import "C"

import "unsafe"

// shape runs the geometric and filter steps on the materialised image:
// orientation, cover crop or contain padding, rotate, flip, flop, blur,
// sharpen.
func (e *Engine) shape(p *pipe, j job) error {
	s := j.spec
	if j.src.orientation != 1 {
		if err := p.orient(j.src.orientation); err != nil {
			return err
		}
	}
	if s.Width > 0 && s.Height > 0 {
		switch s.fit() {
		case FitCover:
			if err := p.coverCrop(s.Width, s.Height, s.gravity()); err != nil {
				return err
			}
		case FitContain:
			if err := p.pad(s.Width, s.Height, s.Background, j.out.hasAlphaChannel()); err != nil {
				return err
			}
		}
	}
	if s.Rotate != 0 {
		if err := p.rotate(s.Rotate); err != nil {
			return err
		}
	}
	if s.Flip {
		if err := p.flip(); err != nil {
			return err
		}
	}
	if s.Flop {
		if err := p.flop(); err != nil {
			return err
		}
	}
	if s.Blur > 0 {
		if err := p.perPage("gaussblur", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.ip_gaussblur(in, C.double(s.Blur), out)
		}); err != nil {
			return err
		}
	}
	if s.Sharpen > 0 {
		if err := p.perPage("sharpen", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.ip_sharpen(in, C.double(s.Sharpen), out)
		}); err != nil {
			return err
		}
	}
	return nil
}

// coverCrop cuts the resized image (which covers the box) down to it. Smart
// gravities use libvips' smartcrop on stills; animations fall back to the
// centre, since each frame would pick a different window.
func (p *pipe) coverCrop(W, H int, g Gravity) error {
	geo := p.geom()
	w, h := min(W, geo.width), min(H, geo.pageHeight)
	if w == geo.width && h == geo.pageHeight {
		return nil
	}
	if (g == GravitySmart || g == GravityEntropy) && geo.pages == 1 {
		return p.apply("smartcrop", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.ip_smartcrop(in, C.int(w), C.int(h), cbool(g == GravityEntropy), out)
		})
	}
	x := gravityOffset(g, geo.width, w, true)
	y := gravityOffset(g, geo.pageHeight, h, false)
	return p.crop(x, y, w, h)
}

// pad centres the image on a W x H canvas: the background colour if given,
// else transparent where the output keeps alpha, else white.
func (p *pipe) pad(W, H int, bg *Color, alphaOut bool) error {
	geo := p.geom()
	if geo.width == W && geo.pageHeight == H {
		return nil
	}
	transparent := bg == nil && alphaOut
	colour := Color{255, 255, 255}
	if bg != nil {
		colour = *bg
	}
	if err := p.colour(); err != nil {
		return err
	}
	if transparent {
		if err := p.apply("addalpha", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.ip_add_alpha(in, out)
		}); err != nil {
			return err
		}
	}
	px := background(colour, int(C.ip_bands(p.im)), transparent)
	x, y := (W-geo.width)/2, (H-geo.pageHeight)/2
	return p.perPage("embed", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_embed(in, C.int(x), C.int(y), C.int(W), C.int(H), (*C.double)(unsafe.Pointer(&px[0])), C.int(len(px)), out)
	})
}

// finish makes the pixels fit the output: grayscale if asked, then alpha
// flattened onto the background for formats without it (JPEG).
func (e *Engine) finish(p *pipe, j job) error {
	if j.spec.Grayscale {
		if err := p.apply("grayscale", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.ip_to_bw(in, out)
		}); err != nil {
			return err
		}
	}
	if j.out.hasAlphaChannel() || !hasAlpha(p.im) {
		return nil
	}
	c := Color{255, 255, 255}
	if j.spec.Background != nil {
		c = *j.spec.Background
		// A grey image flattened onto a colour needs colour bands.
		if !j.spec.Grayscale && !(c.R == c.G && c.G == c.B) {
			if err := p.colour(); err != nil {
				return err
			}
		}
	}
	return p.apply("flatten", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_flatten(in, C.double(c.R), C.double(c.G), C.double(c.B), out)
	})
}
