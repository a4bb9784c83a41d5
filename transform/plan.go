package transform

import (
	"math"

	"github.com/imgpipe/imgpipe/model"
)

// job is a spec checked against one input: everything decided before any
// pixel is touched.
type job struct {
	spec    Spec
	src     inspection
	out     format
	animate bool  // keep every frame
	extract *Rect // in stored orientation
	scale   int   // JPEG's DCT scale on load, in eighths: 8 is full size
	resize  resizePlan
	pixels  int64 // of the output, every frame
}

// plan checks the spec against the input and the limits.
func (e *Engine) plan(s Spec, src inspection) (job, error) {
	j := job{spec: s, src: src}
	if s.Width > e.cfg.MaxOutputDim || s.Height > e.cfg.MaxOutputDim {
		return j, unprocessable(CodeTooLarge, "width and height may be at most %d", e.cfg.MaxOutputDim)
	}
	j.out = outputFormat(s.Format, src.format)
	j.animate = src.animated && j.out.animatable()

	// Sizes in display orientation: width/height as stored, swapped for 5..8.
	sw, sh := orientedSize(src.info.Width, src.info.Height, src.orientation)
	if r := s.Extract; r != nil {
		if r.Left+r.Width > sw || r.Top+r.Height > sh {
			return j, unprocessable(CodeOutOfBounds, "extract %d,%d,%d,%d falls outside the %dx%d image",
				r.Left, r.Top, r.Width, r.Height, sw, sh)
		}
		st := storedRect(src.orientation, src.info.Width, src.info.Height, *r)
		j.extract = &st
		sw, sh = r.Width, r.Height
	}
	if s.Width > 0 && s.Height > 0 && s.fit() == FitCover {
		// Cover scales the whole image to cover the box, then crops. A box
		// far from the image's shape makes the scaled side longer than
		// libvips can address, and the output came out narrower than the
		// box, recorded done.
		f := math.Max(float64(s.Width)/float64(sw), float64(s.Height)/float64(sh))
		if side := math.Max(float64(sw), float64(sh)) * f; side > float64(unbounded) {
			return j, unprocessable(CodeTooLarge, "fit=cover would scale this %dx%d image to %.0f pixels on a side before cropping, more than the %d libvips can address: ask for a box closer to its shape, or use fit=fill",
				sw, sh, side, unbounded)
		}
		// Unless the job streams, the scaled image is held whole before
		// the crop (a smart crop reads all of it): 1x100 pixels covering
		// 4000x4000 held 4000x400000.
		if !j.streams() {
			scaled := int64(math.Ceil(float64(sw)*f)) * int64(math.Ceil(float64(sh)*f)) * 4 * j.frames()
			if err := e.checkDecoded(scaled, "the image scaled by fit=cover before its crop"); err != nil {
				return j, err
			}
		}
	}
	j.resize = planResize(s, sw, sh).stored(src.orientation)

	w, h := predictSize(s, sw, sh)
	j.scale = 8
	if src.format == fmtJPEG {
		j.scale = jpegScale(math.Min(float64(sw)/float64(w), float64(sh)/float64(h)))
	}
	if s.Rotate == 90 || s.Rotate == 270 {
		w, h = h, w
	}
	if err := e.checkOutputDims(w, h, j.out); err != nil {
		return j, err
	}
	frames := j.frames()
	if err := e.checkOutputPixels(w, h, frames, j.out); err != nil {
		return j, err
	}
	j.pixels = int64(w) * int64(h) * frames
	if err := e.checkDecoded(j.encodeBytes(), "the output, as the "+j.out.String()+" encoder holds it,"); err != nil {
		return j, err
	}
	return j, nil
}

// frames is how many frames the job renders.
func (j job) frames() int64 {
	if j.animate {
		return int64(j.src.pages)
	}
	return 1
}

// streams reports whether every step after the resize reads its input
// top to bottom, so that the pipeline can run lazily from the loader to
// the encoder without an intermediate copy. Rotations and flips (EXIF or
// asked), smart crops, filters, watermarks and animations need the
// resized image in memory first.
func (j job) streams() bool {
	s := j.spec
	switch {
	case j.animate, j.src.orientation > 2, s.Rotate != 0, s.Flip,
		s.Blur > 0, s.Sharpen > 0, s.hasWatermark():
		return false
	case s.Width > 0 && s.Height > 0 && s.fit() == FitCover:
		g := s.gravity()
		return g != GravitySmart && g != GravityEntropy
	}
	return true
}

// CheckRequest reports, as a 400, variants whose extract region falls
// outside an image Probe described: the api role can refuse those before
// queueing. Process reports the same as a 422.
func (r Request) CheckRequest(info model.Info) error {
	w, h := orientedSize(info.Width, info.Height, max(1, info.Orientation))
	for _, v := range r.Variants {
		if x := v.Spec.Extract; x != nil && (x.Left+x.Width > w || x.Top+x.Height > h) {
			return badParam("extract", "variant %s: region %d,%d,%d,%d falls outside the %dx%d image",
				v.Name, x.Left, x.Top, x.Width, x.Height, w, h)
		}
	}
	return nil
}

// CheckOutput reports, as the 422 Process would give, variants whose output
// this image cannot have under the limits: a side over the format's
// maximum (WebP's 16383, say), or more pixels than may be held. The api
// role refuses those at upload rather than queue a certain failure.
func (e *Engine) CheckOutput(r Request, info model.Info) error {
	src := inspection{info: info, format: formatByName(info.Format), orientation: max(1, info.Orientation),
		pages: max(1, info.Pages), animated: info.Animated}
	jobs := make([]job, 0, len(r.Variants))
	for _, v := range r.Variants {
		j, err := e.plan(v.Spec, src)
		if err != nil {
			if te, ok := AsError(err); ok && len(r.Variants) > 1 {
				te.Message = "variant " + v.Name + ": " + te.Message
			}
			return err
		}
		jobs = append(jobs, j)
	}
	return e.checkRequestCost(jobs)
}

// outputFormat resolves format=auto: the input's own, PNG for the formats
// libvips reads but does not write.
func outputFormat(name string, in format) format {
	if f := formatByName(name); f != fmtUnknown {
		return f
	}
	if in == fmtSVG || in == fmtPDF {
		return fmtPNG
	}
	return in
}
