package transform

/*
#include "vips_bridge.h"
*/
import "C"

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"runtime"
	"time"
	"unsafe"

	"github.com/imgpipe/imgpipe/model"
)

// Input is one image to process with one spec.
type Input struct {
	Data []byte
	Spec Spec
	// Watermarks holds the bytes of the images the spec names in
	// watermark_image (Request.WatermarkIDs), by id.
	Watermarks map[string][]byte
}

// Process renders one output. Steps, in order (docs/transform.md): auto-
// orient (EXIF), extract, resize (shrink-on-load), cover crop / contain pad,
// rotate, flip, flop, blur, sharpen, watermark, grayscale, flatten, encode.
// Colours are converted to sRGB from any embedded profile on the way in.
// Errors are *Error; the libvips text behind a 422 goes to the log only.
func (e *Engine) Process(ctx context.Context, in Input) ([]byte, model.Info, error) {
	if err := e.checkOpen(); err != nil {
		return nil, model.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, model.Info{}, contextError(err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()

	src, err := e.inspect(in.Data)
	if err != nil {
		return nil, model.Info{}, err
	}
	j, err := e.plan(in.Spec, src)
	if err != nil {
		return nil, model.Info{}, err
	}
	var wm *watermarkSource
	if id := in.Spec.WatermarkImage; id != "" {
		if wm, err = e.watermarkSource(id, in.Watermarks[id]); err != nil {
			return nil, model.Info{}, err
		}
	}

	start := time.Now()
	out, info, err := e.render(ctx, in.Data, j, wm)
	if err != nil {
		return nil, model.Info{}, err
	}
	e.log.Debug("processed", "in_format", src.format.String(), "out_format", info.Format,
		"width", info.Width, "height", info.Height, "bytes", info.Size, "took", time.Since(start))
	return out, info, nil
}

// render runs the libvips pipeline on one locked OS thread (libvips keeps
// per-thread buffers; they are released at the end).
func (e *Engine) render(ctx context.Context, data []byte, j job, wm *watermarkSource) ([]byte, model.Info, error) {
	runtime.LockOSThread()
	defer func() {
		C.ip_thread_done()
		runtime.UnlockOSThread()
	}()
	// libvips reads the input lazily from the caller's buffer: pin it.
	var pin runtime.Pinner
	defer pin.Unpin()
	pin.Pin(&data[0])
	if wm != nil {
		pin.Pin(&wm.data[0])
	}
	vc := &vctx{}
	defer vc.close()

	guard := newGuard(ctx)
	defer guard.release()

	p := &pipe{vc: vc}
	if err := e.decode(p, data, j, guard.g); err != nil {
		return nil, model.Info{}, e.pipelineError(ctx, "decode", err, j)
	}
	if err := e.shape(p, j); err != nil {
		return nil, model.Info{}, e.pipelineError(ctx, "process", err, j)
	}
	if j.spec.hasWatermark() {
		if err := e.watermark(p, j.spec, wm); err != nil {
			return nil, model.Info{}, e.pipelineError(ctx, "watermark", err, j)
		}
	}
	if err := e.finish(p, j); err != nil {
		return nil, model.Info{}, e.pipelineError(ctx, "process", err, j)
	}
	// Filters and compositing are computed lazily by the encoder, out of
	// the guard's reach: when there are any, compute them under it first.
	// (One more copy of the output; the cheap steps do without.)
	if j.spec.Blur > 0 || j.spec.Sharpen > 0 || j.spec.hasWatermark() {
		if err := p.apply("materialize", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.ip_materialize(in, guard.g, out)
		}); err != nil {
			return nil, model.Info{}, e.pipelineError(ctx, "process", err, j)
		}
	}
	g := p.geom()
	if err := e.checkOutputDims(g.width, g.pageHeight, j.out); err != nil {
		return nil, model.Info{}, err
	}
	out, err := encode(p.im, j)
	if err != nil {
		return nil, model.Info{}, e.pipelineError(ctx, "encode", err, j)
	}
	sum := sha256.Sum256(out)
	info := model.Info{
		Format: j.out.String(), Width: g.width, Height: g.pageHeight,
		Size: int64(len(out)), SHA256: hex.EncodeToString(sum[:]),
	}
	if g.pages > 1 {
		info.Pages, info.Animated = g.pages, true
	}
	return out, info, nil
}

// decode loads (shrinking on load where the format allows), extracts and
// resizes, then computes the result into memory under the kill guard: this
// is where the time and memory go, and where a timeout interrupts.
func (e *Engine) decode(p *pipe, data []byte, j job, g *C.ip_guard) error {
	buf, n := unsafe.Pointer(&data[0]), C.size_t(len(data))
	all, icc := cbool(j.animate), cbool(j.src.icc)
	r := j.resize
	var err error
	// JPEG shrinks on load by our own rule (geometry.go); other formats
	// let vips_thumbnail choose (WebP, SVG and PDF load at the target scale).
	if j.extract == nil && j.src.format != fmtJPEG {
		p.im, err = p.vc.do("thumbnail", func(out **C.VipsImage) C.int {
			return C.ip_thumbnail_buffer(buf, n, all, C.int(r.width), C.int(r.height), C.int(r.size), icc, out)
		})
		if err != nil {
			return err
		}
	} else {
		if p.im, err = p.vc.do("load", func(out **C.VipsImage) C.int {
			return C.ip_load(buf, n, C.int(j.src.format), all, C.int(j.shrink), out)
		}); err != nil {
			return err
		}
		if j.extract != nil {
			x := scaleRect(*j.extract, j.shrink, p.geom())
			if err := p.crop(x.Left, x.Top, x.Width, x.Height); err != nil {
				return err
			}
		}
		if err := p.apply("thumbnail", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.ip_thumbnail_image(in, C.int(r.width), C.int(r.height), C.int(r.size), icc, out)
		}); err != nil {
			return err
		}
	}
	if err := p.apply("colourspace", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_to_srgb8(in, 0, out)
	}); err != nil {
		return err
	}
	return p.apply("materialize", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_materialize(in, g, out)
	})
}

// pipelineError maps a failure to a public error; libvips' text is logged.
func (e *Engine) pipelineError(ctx context.Context, stage string, err error, j job) error {
	if ctx.Err() != nil {
		return contextError(ctx.Err())
	}
	// The C deadline can fire a hair before Go's timer.
	var ve *vipsError
	if errors.As(err, &ve) && ve.killed() {
		return contextError(context.DeadlineExceeded)
	}
	if pub, ok := AsError(err); ok {
		return pub
	}
	e.log.Warn("image processing failed", "stage", stage, "in_format", j.src.format.String(),
		"out_format", j.out.String(), "err", err)
	msg := "the image could not be processed"
	switch stage {
	case "decode":
		msg = "the " + j.src.format.String() + " image could not be decoded"
	case "encode":
		msg = "the image could not be encoded as " + j.out.String()
	}
	return &Error{Status: http.StatusUnprocessableEntity, Code: CodeUndecodable, Message: msg, Err: err}
}

func contextError(err error) *Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: http.StatusGatewayTimeout, Code: CodeTimeout,
			Message: "processing took too long", Err: err}
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeCanceled,
		Message: "processing was cancelled", Err: err}
}
