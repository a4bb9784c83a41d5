package transform

import "math"

// resizePlan is what the shrink-on-load resize is asked for. Targets are
// in display orientation; unbounded marks a free side.
type resizePlan struct {
	width, height int
	size          int // sizeDown, sizeBoth or sizeForce
}

// planResize turns the spec's box and fit into a thumbnail request for a
// source of sw x sh (display orientation, after any extract). Cover asks
// for the size that covers the box along its tighter side, the crop comes
// later; contain sizes like inside and pads later.
func planResize(s Spec, sw, sh int) resizePlan {
	W, H := s.Width, s.Height
	grow := sizeDown
	if s.Enlarge {
		grow = sizeBoth
	}
	switch {
	case W == 0 && H == 0:
		return resizePlan{unbounded, unbounded, sizeDown}
	case W == 0:
		return resizePlan{unbounded, H, grow}
	case H == 0:
		return resizePlan{W, unbounded, grow}
	}
	switch s.fit() {
	case FitFill:
		return resizePlan{W, H, sizeForce}
	case FitCover:
		if float64(W)/float64(sw) >= float64(H)/float64(sh) {
			return resizePlan{W, unbounded, sizeBoth}
		}
		return resizePlan{unbounded, H, sizeBoth}
	}
	return resizePlan{W, H, grow}
}

// stored swaps the targets for images stored on their side (EXIF 5..8):
// the resize runs before the rotation.
func (p resizePlan) stored(orientation int) resizePlan {
	if orientation >= 5 {
		p.width, p.height = p.height, p.width
	}
	return p
}

// shrinkFactors are the factors vips_thumbnail would shrink a w x h image
// by for the plan (no crop, no rotation): the larger of the two axes'
// ratios for both unless forced, clamped by the size mode, never below
// one pixel.
func (p resizePlan) shrinkFactors(w, h int) (float64, float64) {
	hs, vs := float64(w)/float64(p.width), float64(h)/float64(p.height)
	if p.size != sizeForce {
		hs = math.Max(hs, vs)
		vs = hs
	}
	if p.size == sizeDown {
		hs, vs = math.Max(1, hs), math.Max(1, vs)
	}
	return math.Min(hs, float64(w)), math.Min(vs, float64(h))
}

// exactly is the plan as a forced size: the size it gives a w x h source.
// An image loaded smaller than that source (JPEG shrink-on-load) is
// resized to it, each axis by its own factor: libjpeg rounds each side up
// on its own, so one factor for both would change a narrow image's shape
// (a 150x3000 JPEG asked for width 10 came out 10x208, not 10x200).
func (p resizePlan) exactly(w, h int) resizePlan {
	hs, vs := p.shrinkFactors(w, h)
	return resizePlan{max(1, int(math.Round(float64(w)/hs))), max(1, int(math.Round(float64(h)/vs))), sizeForce}
}

// predictSize is the output page size before rotate: used to refuse
// oversized outputs before any pixel is computed. The pipeline reads real
// sizes afterwards; rounding may differ by a pixel.
func predictSize(s Spec, sw, sh int) (int, int) {
	W, H := s.Width, s.Height
	scaled := func(f float64) (int, int) {
		if !s.Enlarge && f > 1 {
			f = 1
		}
		return max(1, int(math.Round(float64(sw)*f))), max(1, int(math.Round(float64(sh)*f)))
	}
	switch {
	case W == 0 && H == 0:
		return sw, sh
	case W == 0:
		return scaled(float64(H) / float64(sh))
	case H == 0:
		return scaled(float64(W) / float64(sw))
	}
	switch s.fit() {
	case FitInside:
		return scaled(math.Min(float64(W)/float64(sw), float64(H)/float64(sh)))
	}
	return W, H
}

// gravityOffset places inner within outer along one axis: low, high or
// centred according to which of the gravity's two sides it names.
func gravityOffset(g Gravity, outer, inner int, horizontal bool) int {
	low, high := GravityNorth, GravitySouth
	lowC, highC := []Gravity{GravityNorthWest, GravityNorthEast}, []Gravity{GravitySouthWest, GravitySouthEast}
	if horizontal {
		low, high = GravityWest, GravityEast
		lowC, highC = []Gravity{GravityNorthWest, GravitySouthWest}, []Gravity{GravityNorthEast, GravitySouthEast}
	}
	switch {
	case g == low || g == lowC[0] || g == lowC[1]:
		return 0
	case g == high || g == highC[0] || g == highC[1]:
		return outer - inner
	}
	return (outer - inner) / 2
}

// orientedSize is the display size of a w x h stored image.
func orientedSize(w, h, orientation int) (int, int) {
	if orientation >= 5 {
		return h, w
	}
	return w, h
}

// storedPoint maps a display pixel back to the stored pixel it shows, for
// a stored image of w x h with EXIF orientation o.
func storedPoint(o, w, h, x, y int) (int, int) {
	switch o {
	case 2: // mirrored
		return w - 1 - x, y
	case 3: // upside down
		return w - 1 - x, h - 1 - y
	case 4: // flipped
		return x, h - 1 - y
	case 5: // transposed
		return y, x
	case 6: // stored turned left: display turns it 90 clockwise
		return y, h - 1 - x
	case 7: // transversed
		return w - 1 - y, h - 1 - x
	case 8: // stored turned right
		return w - 1 - y, x
	}
	return x, y
}

// storedRect maps a display-space region to the stored region holding it,
// so extract can run before the (then cheaper) rotation.
func storedRect(o, w, h int, r Rect) Rect {
	x0, y0 := storedPoint(o, w, h, r.Left, r.Top)
	x1, y1 := storedPoint(o, w, h, r.Left+r.Width-1, r.Top+r.Height-1)
	return Rect{Left: min(x0, x1), Top: min(y0, y1), Width: abs(x1-x0) + 1, Height: abs(y1-y0) + 1}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// jpegScale picks the DCT scale libjpeg decodes a JPEG at for an overall
// reduction by factor, in eighths (8 is full size): the smallest that does
// not go below the target, as bimg and imgproxy pick among libvips' 1/2,
// 1/4 and 1/8. vips_thumbnail is more careful (it leaves 2x to the
// resampler), which makes a 640x480 -> 160x160 cover decode at full size
// and cost twice bimg's time; the lanczos resize after the DCT scaling
// keeps the result sharp enough. libjpeg scales by any eighth: that cover
// (a third) decodes at 3/8, 240x180 pixels against 320x240 at the half
// libvips' loader would take, and leaves the resize less to do.
func jpegScale(factor float64) int {
	return min(8, max(1, int(math.Ceil(8/factor-1e-9))))
}

// vipsShrink is libvips' shrink-on-load for a scale in eighths: the
// largest of its 1, 2, 4 and 8 that decodes at least as large.
func vipsShrink(eighths int) int {
	k := 8
	for k > 1 && eighths*k > 8 {
		k /= 2
	}
	return k
}

// scaleRect maps a stored-space rect onto an image decoded at eighths/8,
// widened to whole pixels and clipped to the decoded size.
func scaleRect(r Rect, eighths int, g geometry) Rect {
	if eighths >= 8 {
		return r
	}
	l, t := r.Left*eighths/8, r.Top*eighths/8
	rt := min(g.width, ((r.Left+r.Width)*eighths+7)/8)
	b := min(g.pageHeight, ((r.Top+r.Height)*eighths+7)/8)
	return Rect{Left: l, Top: t, Width: max(1, rt-l), Height: max(1, b-t)}
}
