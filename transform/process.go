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

	src, err := e.inspect(in.Data, false)
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
	out, info, err := e.render(ctx, in.Data, j, wm, j.streams())
	if err != nil {
		return nil, model.Info{}, err
	}
	e.log.Debug("processed", "in_format", src.format.String(), "out_format", info.Format,
		"width", info.Width, "height", info.Height, "bytes", info.Size, "took", time.Since(start))
	return out, info, nil
}

// render runs the libvips pipeline on one locked OS thread (libvips keeps
// per-thread buffers; they are released at the end), streamed if asked.
func (e *Engine) render(ctx context.Context, data []byte, j job, wm *watermarkSource, stream bool) ([]byte, model.Info, error) {
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
	guard := newGuard(ctx)
	defer guard.release()

	out, info, stage, err := e.renderOnce(data, j, wm, guard.g, stream)
	if err != nil && stream && retryable(ctx, err, guard.fired()) {
		// Streamed, every failure surfaces in the encoder. Rare enough to
		// pay for a second, materialised run that names the failing stage.
		out, info, stage, err = e.renderOnce(data, j, wm, guard.g, false)
	}
	if err != nil {
		return nil, model.Info{}, e.pipelineError(ctx, stage, err, j, guard.fired())
	}
	return out, info, nil
}

// renderOnce builds and encodes the pipeline. Streamed, nothing is
// computed before the encoder pulls the pixels through (under the guard);
// otherwise the decoded, resized image is materialised first, for the
// steps that need random access. The error comes with the stage it
// belongs to.
func (e *Engine) renderOnce(data []byte, j job, wm *watermarkSource, g *C.ip_guard, stream bool) ([]byte, model.Info, string, error) {
	vc := &vctx{}
	defer vc.close()
	p := &pipe{vc: vc}
	if err := e.decode(p, data, j, g, stream); err != nil {
		return nil, model.Info{}, "decode", err
	}
	if err := e.shape(p, j); err != nil {
		return nil, model.Info{}, "process", err
	}
	if j.spec.hasWatermark() {
		if err := e.watermark(p, j.spec, wm, g); err != nil {
			return nil, model.Info{}, "watermark", err
		}
	}
	if err := e.finish(p, j); err != nil {
		return nil, model.Info{}, "process", err
	}
	geo := p.geom()
	if err := e.checkOutputDims(geo.width, geo.pageHeight, j.out); err != nil {
		return nil, model.Info{}, "", err
	}
	// Filters and compositing are computed by the encoder, under the guard.
	out, err := encode(p.im, j, g)
	if err != nil {
		return nil, model.Info{}, "encode", err
	}
	if err := e.checkEncoded(out, j.out, geo); err != nil {
		return nil, model.Info{}, "", err
	}
	sum := sha256.Sum256(out)
	info := model.Info{
		Format: j.out.String(), Width: geo.width, Height: geo.pageHeight,
		Size: int64(len(out)), SHA256: hex.EncodeToString(sum[:]),
	}
	if geo.pages > 1 {
		info.Pages, info.Animated = geo.pages, true
	}
	return out, info, "", nil
}

// retryable reports a failure that a materialised run could attribute
// better: not a timeout or cancellation (killed: the guard cut the render
// off), not a limit.
func retryable(ctx context.Context, err error, killed bool) bool {
	if ctx.Err() != nil || killed {
		return false
	}
	_, public := AsError(err)
	return !public
}

// decode loads (shrinking on load where the format allows), extracts and
// resizes: this is where the time and memory go. Unless the job streams,
// the result is computed into memory here under the kill guard, where a
// timeout interrupts it.
func (e *Engine) decode(p *pipe, data []byte, j job, g *C.ip_guard, stream bool) error {
	buf, n := unsafe.Pointer(&data[0]), C.size_t(len(data))
	all, icc := cbool(j.animate), cbool(j.src.icc)
	r := j.resize
	var err error
	// JPEG shrinks on load by our own rule (geometry.go); other formats
	// let vips_thumbnail choose (WebP, SVG and PDF load at the target scale),
	// except TIFF: vips_thumbnail takes a TIFF's pages for a pyramid's
	// levels and, asked for less than the first, read the smallest (a
	// 640x480 pyramid came out 80x60 whatever the size asked). The first
	// page is the image, as for every multi-page TIFF.
	if j.extract == nil && j.src.format != fmtJPEG && j.src.format != fmtTIFF {
		p.im, err = p.vc.do("thumbnail", func(out **C.VipsImage) C.int {
			return C.ip_thumbnail_buffer(buf, n, all, C.int(r.width), C.int(r.height), C.int(r.size), icc, out)
		})
		if err != nil {
			return err
		}
	} else {
		scale, err := e.load(p, buf, n, j, all, g)
		if err != nil {
			return err
		}
		w, h := j.src.info.Width, j.src.info.Height
		if j.extract != nil {
			x := scaleRect(*j.extract, scale, p.geom())
			if err := p.crop(x.Left, x.Top, x.Width, x.Height); err != nil {
				return err
			}
			w, h = j.extract.Width, j.extract.Height
		}
		if scale < 8 {
			r = r.exactly(w, h)
		}
		if err := p.resize(r, j.src.icc, g); err != nil {
			return err
		}
	}
	if err := p.apply("colourspace", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_to_srgb8(in, 0, out)
	}); err != nil {
		return err
	}
	if stream {
		return nil
	}
	return p.apply("materialize", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.ip_materialize(in, g, out)
	})
}

// pipelineError maps a failure to a public error; libvips' text is logged.
// killed says the guard cut the render off: the failure is the deadline's
// whatever libvips reported (a loader cut off mid-read may say it could not
// read, which would otherwise be the image's fault, for good).
func (e *Engine) pipelineError(ctx context.Context, stage string, err error, j job, killed bool) error {
	if ctx.Err() != nil {
		return contextError(ctx.Err())
	}
	// The C deadline can fire a hair before Go's timer.
	if killed {
		return contextError(context.DeadlineExceeded)
	}
	if pub, ok := AsError(err); ok {
		return pub
	}
	e.log.Warn("image processing failed", "stage", stage, "in_format", j.src.format.String(),
		"out_format", j.out.String(), "err", err)
	code, msg := CodeUndecodable, "the image could not be processed"
	switch {
	case stage == "decode":
		msg = "the " + j.src.format.String() + " image could not be decoded"
	case stage == "encode":
		msg = "the image could not be encoded as " + j.out.String()
	case stage == "watermark" && j.spec.WatermarkImage != "":
		code, msg = CodeWatermark, "watermark image "+j.spec.WatermarkImage+" could not be decoded"
	case stage == "watermark":
		// Cairo's surfaces stop at 32767 pixels a side.
		code, msg = CodeWatermark, "the watermark text could not be rendered at this output size: make it shorter or the output smaller"
	}
	return &Error{Status: http.StatusUnprocessableEntity, Code: code, Message: msg, Err: err}
}

func contextError(err error) *Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: http.StatusGatewayTimeout, Code: CodeTimeout,
			Message: "processing took too long", Err: err}
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeCanceled,
		Message: "processing was cancelled", Err: err}
}
