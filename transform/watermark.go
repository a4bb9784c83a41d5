package transform

/*
#include "vips_bridge.h"
*/
import "C"

import (
	"math"
	"net/http"
	"unsafe"
)

// watermarkSource is a checked watermark image.
type watermarkSource struct {
	id   string
	data []byte
	src  inspection
}

// watermarkSource applies the same checks as to uploads: the watermark is
// someone's upload too.
func (e *Engine) watermarkSource(id string, data []byte) (*watermarkSource, error) {
	if len(data) == 0 {
		return nil, unprocessable(CodeWatermark, "watermark image %q was not provided", id)
	}
	src, err := e.inspect(data, false)
	if err != nil {
		msg := publicMessage(err)
		return nil, &Error{Status: http.StatusUnprocessableEntity, Code: CodeWatermark,
			Message: "watermark image " + id + ": " + msg, Err: err}
	}
	return &watermarkSource{id: id, data: data, src: src}, nil
}

// Watermark layout, relative to the output's smaller side.
const (
	watermarkMargin   = 0.03 // gap to the edges
	watermarkTextSize = 0.06 // default font size
	maxFontPx         = 1000
)

// watermark composites the text or image mark at its position (or tiled)
// with its opacity, on every page of an animation.
func (e *Engine) watermark(p *pipe, s Spec, wm *watermarkSource, g *C.ip_guard) error {
	geo := p.geom()
	W, H := geo.width, geo.pageHeight
	margin := max(2, int(math.Round(float64(min(W, H))*watermarkMargin)))
	boxW, boxH := max(1, W-2*margin), max(1, H-2*margin)

	var mark *pipe
	var err error
	if s.WatermarkText != "" {
		mark, err = textMark(p.vc, s.WatermarkText, s.WatermarkSize, W, H, boxW, boxH)
	} else {
		mark, err = imageMark(p.vc, wm, s.WatermarkSize, W, boxW, boxH, g)
	}
	if err != nil {
		return err
	}
	if op := s.watermarkOpacity(); op < 1 {
		if err := mark.apply("opacity", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.ip_scale_alpha(in, C.double(op), out)
		}); err != nil {
			return err
		}
	}
	mg := mark.geom()
	pos := s.watermarkPosition()
	x := margin + gravityOffset(pos, boxW, mg.width, true)
	y := margin + gravityOffset(pos, boxH, mg.height, false)
	if pos == GravityTile {
		if err := mark.tile(W, H); err != nil {
			return err
		}
		x, y = 0, 0
	}
	if geo.pages > 1 {
		// One page-sized layer, stacked to the animation's height.
		if pos != GravityTile {
			zero := []C.double{0, 0, 0, 0}
			if err := mark.apply("embed", func(in *C.VipsImage, out **C.VipsImage) C.int {
				return C.ip_embed(in, C.int(x), C.int(y), C.int(W), C.int(H), &zero[0], 4, out)
			}); err != nil {
				return err
			}
			x, y = 0, 0
		}
		if err := mark.apply("replicate", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.ip_replicate(in, 1, C.int(geo.pages), out)
		}); err != nil {
			return err
		}
	}
	layer := mark.im
	return p.apply("composite", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_composite_over(in, layer, C.int(x), C.int(y), out)
	})
}

// textMark renders white text with a dark halo. Its size is the default
// share of the smaller side, or watermark_size of the output width; either
// way it is shrunk to fit inside the margins.
func textMark(vc *vctx, text string, size float64, W, H, boxW, boxH int) (*pipe, error) {
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))
	render := func(px int) (*pipe, error) {
		m, err := vc.do("text", func(out **C.VipsImage) C.int { return C.ip_text_mask(ctext, C.int(px), out) })
		return &pipe{vc: vc, im: m}, err
	}
	fontPx := max(10, int(math.Round(float64(min(W, H))*watermarkTextSize)))
	if size > 0 {
		const probe = 100 // measure once at a known size, then scale the font
		m, err := render(probe)
		if err != nil {
			return nil, err
		}
		fontPx = int(probe * size * float64(W) / float64(max(1, m.geom().width)))
	}
	fontPx = min(max(fontPx, 6), maxFontPx)
	mark, err := render(fontPx)
	if err != nil {
		return nil, err
	}
	pad := max(1, fontPx/10)
	if err := mark.apply("halo", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_text_watermark(in, C.int(pad), out)
	}); err != nil {
		return nil, err
	}
	return mark, mark.fit(boxW, boxH)
}

// imageMark loads the watermark at its natural size (or watermark_size of
// the output width), within the margins, upright, as 8-bit RGBA.
func imageMark(vc *vctx, wm *watermarkSource, size float64, W, boxW, boxH int, g *C.ip_guard) (*pipe, error) {
	plan := resizePlan{boxW, boxH, sizeDown}
	if size > 0 {
		plan = resizePlan{max(1, int(math.Round(size*float64(W)))), boxH, sizeBoth}
	}
	plan = plan.stored(wm.src.orientation)
	buf, n := unsafe.Pointer(&wm.data[0]), C.size_t(len(wm.data))
	im, err := vc.do("watermark thumbnail", func(out **C.VipsImage) C.int {
		return C.ip_thumbnail_buffer(buf, n, 0, C.int(plan.width), C.int(plan.height), C.int(plan.size), cbool(wm.src.icc), out)
	})
	if err != nil {
		return nil, err
	}
	mark := &pipe{vc: vc, im: im}
	if err := mark.orient(wm.src.orientation); err != nil {
		return nil, err
	}
	if err := mark.colour(); err != nil {
		return nil, err
	}
	if err := mark.apply("addalpha", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_add_alpha(in, out)
	}); err != nil {
		return nil, err
	}
	// Its header passed the checks, but its pixels are only read now: left
	// to the encoder, bad ones would fail "the upload could not be
	// encoded". The mark is no larger than the output.
	err = mark.apply("materialize watermark", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_materialize(in, g, out)
	})
	// Cut off by the guard, it is the render's timeout, not the mark's.
	if err != nil && C.ip_guard_fired(g) == 0 {
		return nil, &Error{Status: http.StatusUnprocessableEntity, Code: CodeWatermark,
			Message: "watermark image " + wm.id + " could not be decoded", Err: err}
	}
	return mark, err
}

// fit shrinks the mark to fit w x h.
func (p *pipe) fit(w, h int) error {
	g := p.geom()
	scale := math.Min(float64(w)/float64(g.width), float64(h)/float64(g.height))
	if scale >= 1 {
		return nil
	}
	return p.apply("resize", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_resize(in, C.double(scale), out)
	})
}

// tile repeats the mark over a W x H layer, with half a mark of space
// between copies across and a mark's height between rows.
func (p *pipe) tile(W, H int) error {
	g := p.geom()
	cw, ch := g.width+max(1, g.width/2), g.height*2
	zero := []C.double{0, 0, 0, 0}
	if err := p.apply("embed", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_embed(in, 0, 0, C.int(cw), C.int(ch), &zero[0], 4, out)
	}); err != nil {
		return err
	}
	if err := p.apply("replicate", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_replicate(in, C.int((W+cw-1)/cw), C.int((H+ch-1)/ch), out)
	}); err != nil {
		return err
	}
	return p.apply("crop", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_extract_area(in, 0, 0, C.int(W), C.int(H), out)
	})
}
