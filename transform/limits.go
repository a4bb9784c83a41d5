package transform

import "fmt"

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

func humanCount(n int64) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
