package transform

import (
	"fmt"
	"time"
)

// Limit checks shared by Probe and Process. All are 422: the request was
// well-formed, this image is too much.

func (e *Engine) checkPixels(w, h int) error {
	if w <= 0 || h <= 0 {
		return nil // unknown yet: the libvips header check follows
	}
	if px := int64(w) * int64(h); px > e.cfg.MaxInputPixels {
		return unprocessable(CodeTooLarge, "image is %dx%d (%s pixels), the limit is %s pixels",
			w, h, humanCount(px), humanCount(e.cfg.MaxInputPixels))
	}
	return nil
}

func (e *Engine) checkFrames(n int) error {
	if n > e.cfg.MaxFrames {
		return unprocessable(CodeTooManyFrames, "animation has more than %d frames (the limit)", e.cfg.MaxFrames)
	}
	return nil
}

func (e *Engine) checkDecoded(bytes int64, what string) error {
	if bytes > e.cfg.MaxDecodedBytes {
		return unprocessable(CodeTooLarge, "decoded %s would take %d MiB, the limit is %d MiB",
			what, bytes>>20, e.cfg.MaxDecodedBytes>>20)
	}
	return nil
}

func (e *Engine) checkOutputDims(w, h int, f format) error {
	limit := min(e.cfg.MaxOutputDim, f.maxDimension())
	if w > limit || h > limit {
		return unprocessable(CodeTooLarge, "output would be %dx%d, the limit for %s is %d pixels a side", w, h, f, limit)
	}
	return nil
}

// maxScans bounds the scans of a progressive JPEG. Encoders write about
// ten (mozjpeg a few more); every scan is a pass of the decoder over the
// whole image, inside one libjpeg call nothing interrupts: 12,000 scans of
// empty refinements in 1.9 MB kept a core busy past the timeout, three
// minutes an attempt.
const maxScans = 200

// checkOutputPixels bounds what a result may cost: width*height*frames
// against max_output_pixels, and for the encoders that cannot be
// interrupted, against what they finish within the processing timeout.
func (e *Engine) checkOutputPixels(w, h int, frames int64, f format) error {
	px := int64(w) * int64(h) * frames
	size := fmt.Sprintf("%dx%d", w, h)
	if frames > 1 {
		size += fmt.Sprintf(" in %d frames", frames)
	}
	if px > e.cfg.MaxOutputPixels {
		return unprocessable(CodeTooLarge, "output would be %s (%s pixels), the limit is %s pixels",
			size, humanCount(px), humanCount(e.cfg.MaxOutputPixels))
	}
	if limit := encodeCap(f, e.cfg.Timeout); limit > 0 && px > limit {
		return unprocessable(CodeTooLarge, "output would be %s (%s pixels): the %s encoder cannot be interrupted, "+
			"so it is given at most %s pixels, about %s of its work; ask for a smaller size or another format",
			size, humanCount(px), f, humanCount(limit), max(e.cfg.Timeout, encodeBudget))
	}
	return nil
}

// encodeCap is the most pixels f's encoder is given, or 0 for no cap.
// libvips computes the pixels under the kill guard, but these encoders
// then take the whole image in one call that nothing stops (libwebp, cgif
// with libimagequant, libheif with aom or x265): a timed-out render runs to
// its end, holding its worker, and a 500-byte upload asking for 16384x16384
// HEIF kept a core busy for minutes, twice. The cap is what the encoder does
// in encodeBudget, or in the timeout if that is longer (whoever raises it
// wants larger images). The rates are what one loaded core of a small VM
// managed on a photograph, the slowest of several runs, so that a cap errs
// towards letting through: HEIF (x265) 4 s per megapixel, AVIF (aom,
// effort 2) 1.5 s, GIF 3.3 s, WebP 0.35 s.
func encodeCap(f format, timeout time.Duration) int64 {
	var perSecond float64
	switch f {
	case fmtHEIF:
		perSecond = 250_000
	case fmtAVIF:
		perSecond = 700_000
	case fmtGIF:
		perSecond = 300_000
	case fmtWebP:
		perSecond = 3_000_000
	default:
		return 0
	}
	return int64(max(timeout, encodeBudget).Seconds() * perSecond)
}

// encodeBudget is how long an encoder that cannot be interrupted may be
// asked to run, at least: the default transform.timeout.
const encodeBudget = DefaultTimeout

func humanCount(n int64) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
