package transform

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxCoord bounds any coordinate a spec may carry whatever the config says
// (libvips' own limit is 10,000,000; no encoder goes past 65535).
const maxCoord = 65535

// Parameter bounds.
const (
	maxBlur          = 50 // gaussblur cost grows with sigma
	maxSharpen       = 10
	maxWatermarkText = 200 // runes
)

type parseLimits struct{ maxDim int }

// canonicalLimits are used to re-parse stored canonical specs: the config
// that accepted them may have been wider than today's, and Process checks
// the real limits again.
var canonicalLimits = parseLimits{maxDim: maxCoord}

// specParams maps every public parameter name to its parser. The names are
// a public contract (docs/transform.md).
var specParams = map[string]func(*Spec, string, parseLimits) error{
	"width":              func(s *Spec, v string, l parseLimits) error { return parseDim(&s.Width, "width", v, l) },
	"height":             func(s *Spec, v string, l parseLimits) error { return parseDim(&s.Height, "height", v, l) },
	"fit":                parseFit,
	"enlarge":            boolParam(func(s *Spec) *bool { return &s.Enlarge }, "enlarge"),
	"gravity":            parseGravity,
	"extract":            parseExtract,
	"rotate":             parseRotate,
	"flip":               boolParam(func(s *Spec) *bool { return &s.Flip }, "flip"),
	"flop":               boolParam(func(s *Spec) *bool { return &s.Flop }, "flop"),
	"blur":               floatParam(func(s *Spec) *float64 { return &s.Blur }, "blur", 0, maxBlur, true),
	"sharpen":            floatParam(func(s *Spec) *float64 { return &s.Sharpen }, "sharpen", 0, maxSharpen, true),
	"grayscale":          boolParam(func(s *Spec) *bool { return &s.Grayscale }, "grayscale"),
	"background":         parseBackground,
	"watermark_text":     parseWatermarkText,
	"watermark_image":    parseWatermarkImage,
	"watermark_opacity":  floatParam(func(s *Spec) *float64 { return &s.WatermarkOpacity }, "watermark_opacity", 0, 1, false),
	"watermark_position": parseWatermarkPosition,
	"watermark_size":     floatParam(func(s *Spec) *float64 { return &s.WatermarkSize }, "watermark_size", 0, 1, false),
	"format":             parseFormat,
	"quality":            parseQuality,
	"lossless":           boolParam(func(s *Spec) *bool { return &s.Lossless }, "lossless"),
	"progressive":        boolParam(func(s *Spec) *bool { return &s.Progressive }, "progressive"),
	"strip":              parseStrip,
}

func parseDim(dst *int, name, v string, l parseLimits) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > l.maxDim {
		return badParam(name, "must be an integer from 1 to %d (0 means unconstrained), got %q", l.maxDim, v)
	}
	*dst = n
	return nil
}

func parseBool(name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, badParam(name, "must be true, false, 1 or 0, got %q", v)
}

func boolParam(field func(*Spec) *bool, name string) func(*Spec, string, parseLimits) error {
	return func(s *Spec, v string, _ parseLimits) error {
		b, err := parseBool(name, v)
		*field(s) = b
		return err
	}
}

// floatParam accepts min < v <= max, or v == 0 too when zeroOK (0 = off).
func floatParam(field func(*Spec) *float64, name string, min, max float64, zeroOK bool) func(*Spec, string, parseLimits) error {
	return func(s *Spec, v string, _ parseLimits) error {
		f, err := strconv.ParseFloat(v, 64)
		ok := err == nil && !math.IsNaN(f) && f <= max && (f > min || zeroOK && f == 0)
		if !ok {
			if zeroOK {
				return badParam(name, "must be a number from 0 to %g, got %q", max, v)
			}
			return badParam(name, "must be a number greater than %g and at most %g, got %q", min, max, v)
		}
		*field(s) = f
		return nil
	}
}

func parseFit(s *Spec, v string, _ parseLimits) error {
	switch f := Fit(strings.ToLower(v)); f {
	case FitInside:
		s.Fit = ""
	case FitCover, FitFill, FitContain:
		s.Fit = f
	default:
		return badParam("fit", "must be inside, cover, fill or contain, got %q", v)
	}
	return nil
}

// gravityAliases maps accepted spellings to the canonical name.
var gravityAliases = map[string]Gravity{
	"center": GravityCenter, "centre": GravityCenter,
	"north": GravityNorth, "south": GravitySouth, "east": GravityEast, "west": GravityWest,
	"northeast": GravityNorthEast, "northwest": GravityNorthWest,
	"southeast": GravitySouthEast, "southwest": GravitySouthWest,
	"smart": GravitySmart, "attention": GravitySmart, "entropy": GravityEntropy,
}

func parseGravity(s *Spec, v string, _ parseLimits) error {
	g, ok := gravityAliases[strings.ToLower(v)]
	if !ok {
		return badParam("gravity", "must be center, north, south, east, west, northeast, northwest, southeast, southwest, smart or entropy, got %q", v)
	}
	if g == GravityCenter {
		g = ""
	}
	s.Gravity = g
	return nil
}

func parseWatermarkPosition(s *Spec, v string, _ parseLimits) error {
	g, ok := gravityAliases[strings.ToLower(v)]
	if strings.ToLower(v) == "tile" {
		g, ok = GravityTile, true
	}
	if !ok || g == GravitySmart || g == GravityEntropy {
		return badParam("watermark_position", "must be center, north, south, east, west, northeast, northwest, southeast, southwest or tile, got %q", v)
	}
	if g == DefaultWatermarkPosition {
		g = ""
	}
	s.WatermarkPosition = g
	return nil
}

func parseExtract(s *Spec, v string, _ parseLimits) error {
	parts := strings.Split(v, ",")
	msg := "must be left,top,width,height in pixels (width and height at least 1), got %q"
	if len(parts) != 4 {
		return badParam("extract", msg, v)
	}
	var n [4]int
	for i, p := range parts {
		x, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || x < 0 || x > maxCoord || (i >= 2 && x == 0) {
			return badParam("extract", msg, v)
		}
		n[i] = x
	}
	if n[0]+n[2] > maxCoord || n[1]+n[3] > maxCoord {
		return badParam("extract", "region ends beyond %d pixels: %q", maxCoord, v)
	}
	s.Extract = &Rect{Left: n[0], Top: n[1], Width: n[2], Height: n[3]}
	return nil
}

func parseRotate(s *Spec, v string, _ parseLimits) error {
	n, err := strconv.Atoi(v)
	if err != nil || n%90 != 0 || n < -360 || n > 360 {
		return badParam("rotate", "must be 0, 90, 180 or 270 degrees clockwise (or the same turn from -360 to 360: -90 is 270), got %q", v)
	}
	s.Rotate = (n + 360) % 360
	return nil
}

func parseBackground(s *Spec, v string, _ parseLimits) error {
	h := strings.ToLower(strings.TrimPrefix(v, "#"))
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	n, err := strconv.ParseUint(h, 16, 32)
	if len(h) != 6 || err != nil {
		return badParam("background", "must be a hex colour of 3 or 6 digits, with or without #, got %q", v)
	}
	s.Background = &Color{R: uint8(n >> 16), G: uint8(n >> 8), B: uint8(n)}
	return nil
}

func parseWatermarkText(s *Spec, v string, _ parseLimits) error {
	// Visible: spaces, zero-width and other format characters alone draw
	// nothing, and the renderer fails on them after the upload was taken.
	if !utf8.ValidString(v) || !strings.ContainsFunc(v, visible) {
		return badParam("watermark_text", "must be UTF-8 text with at least one visible character")
	}
	if utf8.RuneCountInString(v) > maxWatermarkText {
		return badParam("watermark_text", "must be at most %d characters", maxWatermarkText)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return badParam("watermark_text", "must not contain control characters")
		}
	}
	s.WatermarkText = v
	return nil
}

// visible is a rune that draws something: a letter, digit, punctuation or
// symbol (not a space, a mark on its own or a format character).
func visible(r rune) bool { return unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S) }

var imageIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

func parseWatermarkImage(s *Spec, v string, _ parseLimits) error {
	if !imageIDPattern.MatchString(v) {
		return badParam("watermark_image", "must be an image id ([A-Za-z0-9_-]{1,128}), got %q", v)
	}
	s.WatermarkImage = v
	return nil
}

// formatAliases maps accepted output format spellings to the canonical one.
var formatAliases = map[string]string{
	"auto": "auto", "jpeg": "jpeg", "jpg": "jpeg", "png": "png", "webp": "webp",
	"avif": "avif", "gif": "gif", "tiff": "tiff", "tif": "tiff", "heif": "heif", "heic": "heif",
}

func parseFormat(s *Spec, v string, _ parseLimits) error {
	f, ok := formatAliases[strings.ToLower(v)]
	if !ok {
		return badParam("format", "must be auto, jpeg, png, webp, avif, gif, tiff or heif, got %q", v)
	}
	if f == "auto" {
		f = ""
	}
	s.Format = f
	return nil
}

func parseQuality(s *Spec, v string, _ parseLimits) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 100 {
		return badParam("quality", "must be an integer from 1 to 100, got %q", v)
	}
	if n == DefaultQuality {
		n = 0
	}
	s.Quality = n
	return nil
}

func parseStrip(s *Spec, v string, _ parseLimits) error {
	b, err := parseBool("strip", v)
	s.KeepMetadata = !b
	return err
}

// nameRE is the rule for preset and variant names.
var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

func validName(s string) bool { return nameRE.MatchString(s) }
