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

// checkDecoded bounds the pixels held in memory at once; what names them.
func (e *Engine) checkDecoded(bytes int64, what string) error {
	if bytes > e.cfg.MaxDecodedBytes {
		return unprocessable(CodeTooLarge, "%s would take %d MiB of memory, the limit is %d MiB",
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
// interrupted, against what they do in about a minute.
func (e *Engine) checkOutputPixels(w, h int, frames int64, f format) error {
	px := int64(w) * int64(h) * frames
	// Named only in a refusal: every variant of every upload passes here.
	size := func() string {
		if frames > 1 {
			return fmt.Sprintf("%dx%d in %d frames", w, h, frames)
		}
		return fmt.Sprintf("%dx%d", w, h)
	}
	if px > e.cfg.MaxOutputPixels {
		return unprocessable(CodeTooLarge, "output would be %s (%s pixels), the limit is %s pixels",
			size(), humanCount(px), humanCount(e.cfg.MaxOutputPixels))
	}
	if limit := e.encodeCap(f); limit > 0 && px > limit {
		return unprocessable(CodeTooLarge, "output would be %s (%s pixels): the %s encoder cannot be interrupted, "+
			"so it is given at most %s pixels, about %s of its work; ask for a smaller size or another format",
			size(), humanCount(px), f, humanCount(limit), e.encodeBudget())
	}
	return nil
}

// checkRequestCost bounds one image's variants together, as they are one
// message's work: their pixels, and the time of the encoders nothing can
// interrupt. Each variant alone passed checkOutputPixels.
func (e *Engine) checkRequestCost(jobs []job) error {
	var px int64
	var seconds float64
	for _, j := range jobs {
		px += j.pixels
		if rate := j.out.encodeRate(); rate > 0 {
			seconds += float64(j.pixels) / rate
		}
	}
	if px > e.cfg.MaxOutputPixels {
		return unprocessable(CodeTooLarge, "the variants' outputs add up to %s pixels, the limit is %s pixels",
			humanCount(px), humanCount(e.cfg.MaxOutputPixels))
	}
	if budget := e.encodeBudget(); seconds > budget.Seconds() {
		return unprocessable(CodeTooLarge, "the variants' encoders that cannot be interrupted would take about %s together, more than %s; ask for fewer or smaller variants",
			time.Duration(seconds*float64(time.Second)).Round(time.Second), budget)
	}
	return nil
}

// encodeCap is the most pixels f's encoder is given, or 0 for no cap.
// libvips computes the pixels under the kill guard, but these encoders
// then take the whole image in one call that nothing stops (libwebp, cgif
// with libimagequant, libheif with aom or x265): a timed-out render runs to
// its end, holding its worker, and a 500-byte upload asking for 16384x16384
// HEIF kept a core busy for minutes, twice (and, past the ack wait, on
// several workers at once).
func (e *Engine) encodeCap(f format) int64 {
	return int64(e.encodeBudget().Seconds() * f.encodeRate())
}

// encodeBudget is how long the encoders that cannot be interrupted may be
// asked to run for one image: the default timeout, or the configured one if
// longer (whoever raises it wants larger images).
func (e *Engine) encodeBudget() time.Duration { return max(e.cfg.Timeout, DefaultTimeout) }

// encodeRate is the pixels a second of an encoder that cannot be
// interrupted, or 0 for one that can (JPEG, PNG and TIFF compress strip by
// strip under the kill guard). One core of a small VM, unloaded, took per
// megapixel: HEIF (x265) 1 to 1.1 s, AVIF (aom, effort 2) 0.25 to 0.5 s,
// GIF 0.15 s a frame of an animation to 0.5 s for a photograph, WebP 0.16
// to 0.35 s. The rates below are the slow end of those, with some room:
// HEIF 1.5 s, AVIF 0.5 s, GIF 0.7 s, WebP 0.35 s. No slower: taken from the
// slowest runs under load, the caps refused a phone's 24 MP HEIC rotated,
// and the built-in web preset on a 150-frame GIF. So a cap is about a
// minute of an idle core, a few on a loaded one.
func (f format) encodeRate() float64 {
	switch f {
	case fmtHEIF:
		return 1e6 / 1.5
	case fmtAVIF:
		return 1e6 / 0.5
	case fmtGIF:
		return 1e6 / 0.7
	case fmtWebP:
		return 1e6 / 0.35
	}
	return 0
}

// encodeBytes is the memory j's encoder holds at its peak. The encoders
// above take a whole frame with their working copies (a 16384x16384
// lossless WebP took 5.5 GB more, AVIF about as much, HEIF 4.2 GB: about 20
// bytes a pixel), and an animation's other frames wait decoded beside it,
// 4 bytes a pixel (640x480 in 200 frames to WebP took 215 MB). The others
// take the image strip by strip: its decoded size bounds them.
func (j job) encodeBytes() int64 {
	if j.out.encodeRate() == 0 {
		return 4 * j.pixels
	}
	frame := j.pixels / j.frames()
	return 20*frame + 4*(j.pixels-frame)
}

func humanCount(n int64) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
