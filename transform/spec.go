package transform

import (
	"cmp"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Fit says how an image is brought into a width x height box.
type Fit string

const (
	FitInside  Fit = "inside"  // scale to fit inside the box; never enlarges unless Enlarge
	FitCover   Fit = "cover"   // scale to cover the box, then crop it by Gravity
	FitFill    Fit = "fill"    // stretch to exactly the box
	FitContain Fit = "contain" // fit inside, then pad to the box with Background
)

// Gravity names a position: where a cover crop keeps the image, or where a
// watermark goes. Smart and Entropy only apply to crops; Tile only to
// watermarks.
type Gravity string

const (
	GravityCenter    Gravity = "center"
	GravityNorth     Gravity = "north"
	GravitySouth     Gravity = "south"
	GravityEast      Gravity = "east"
	GravityWest      Gravity = "west"
	GravityNorthEast Gravity = "northeast"
	GravityNorthWest Gravity = "northwest"
	GravitySouthEast Gravity = "southeast"
	GravitySouthWest Gravity = "southwest"
	GravitySmart     Gravity = "smart"   // libvips attention: skin, saturation, edges
	GravityEntropy   Gravity = "entropy" // libvips entropy
	GravityTile      Gravity = "tile"    // watermark repeated over the image
)

// Rect is a region in pixels of the auto-oriented input.
type Rect struct{ Left, Top, Width, Height int }

// Color is an opaque sRGB colour.
type Color struct{ R, G, B uint8 }

// Hex returns the colour as six lowercase hex digits.
func (c Color) Hex() string { return fmt.Sprintf("%02x%02x%02x", c.R, c.G, c.B) }

// Spec is one output's transformation. The zero value is a no-op that keeps
// the input's format: every field's zero means its default, so the parser
// stores explicit defaults as zero and Canonical can omit them.
type Spec struct {
	Width   int     // 0: not constrained
	Height  int     // 0: not constrained
	Fit     Fit     // "": inside
	Enlarge bool    // inside/contain may scale up
	Gravity Gravity // "": center
	Extract *Rect   // region of the oriented input, taken before resizing

	Rotate     int     // 0, 90, 180, 270 (clockwise)
	Flip       bool    // mirror top to bottom
	Flop       bool    // mirror left to right
	Blur       float64 // gaussian sigma, 0: none
	Sharpen    float64 // sharpen sigma, 0: none
	Grayscale  bool
	Background *Color // flattening and contain padding; nil: white (transparent padding when the output keeps alpha)

	WatermarkText     string
	WatermarkImage    string  // image id; bytes come through Input.Watermarks
	WatermarkOpacity  float64 // (0,1]; 0: 0.5
	WatermarkPosition Gravity // "": southeast
	WatermarkSize     float64 // (0,1] of the output width; 0: automatic

	Format       string // "": auto (the input's, png for svg/pdf)
	Quality      int    // 1..100; 0: 80
	Lossless     bool   // webp/avif/heif
	Progressive  bool   // progressive jpeg, interlaced png
	KeepMetadata bool   // strip=false: keep EXIF/XMP/ICC (orientation is reset)
}

// Defaults applied where a Spec field is zero.
const (
	DefaultQuality           = 80
	DefaultWatermarkOpacity  = 0.5
	DefaultWatermarkPosition = GravitySouthEast
)

// The zero value of a field means its default (the canonical form omits
// defaults), so every reader goes through these.
func (s Spec) fit() Fit                  { return cmp.Or(s.Fit, FitInside) }
func (s Spec) gravity() Gravity          { return cmp.Or(s.Gravity, GravityCenter) }
func (s Spec) quality() int              { return cmp.Or(s.Quality, DefaultQuality) }
func (s Spec) watermarkOpacity() float64 { return cmp.Or(s.WatermarkOpacity, DefaultWatermarkOpacity) }
func (s Spec) watermarkPosition() Gravity {
	return cmp.Or(s.WatermarkPosition, DefaultWatermarkPosition)
}

func (s Spec) hasWatermark() bool { return s.WatermarkText != "" || s.WatermarkImage != "" }

// params returns the spec as key -> canonical value, defaults left out.
func (s Spec) params() map[string]string {
	p := map[string]string{}
	setInt := func(k string, v int) {
		if v != 0 {
			p[k] = strconv.Itoa(v)
		}
	}
	setBool := func(k string, v bool) {
		if v {
			p[k] = "true"
		}
	}
	setFloat := func(k string, v float64) {
		if v != 0 {
			p[k] = strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	setStr := func(k, v string) {
		if v != "" {
			p[k] = v
		}
	}
	setInt("width", s.Width)
	setInt("height", s.Height)
	if s.Fit != FitInside {
		setStr("fit", string(s.Fit))
	}
	setBool("enlarge", s.Enlarge)
	if s.Gravity != GravityCenter {
		setStr("gravity", string(s.Gravity))
	}
	if r := s.Extract; r != nil {
		p["extract"] = fmt.Sprintf("%d,%d,%d,%d", r.Left, r.Top, r.Width, r.Height)
	}
	setInt("rotate", s.Rotate)
	setBool("flip", s.Flip)
	setBool("flop", s.Flop)
	setFloat("blur", s.Blur)
	setFloat("sharpen", s.Sharpen)
	setBool("grayscale", s.Grayscale)
	if s.Background != nil {
		p["background"] = s.Background.Hex()
	}
	setStr("watermark_text", s.WatermarkText)
	setStr("watermark_image", s.WatermarkImage)
	if s.WatermarkOpacity != DefaultWatermarkOpacity {
		setFloat("watermark_opacity", s.WatermarkOpacity)
	}
	if s.WatermarkPosition != DefaultWatermarkPosition {
		setStr("watermark_position", string(s.WatermarkPosition))
	}
	setFloat("watermark_size", s.WatermarkSize)
	if s.Format != "auto" {
		setStr("format", s.Format)
	}
	if s.Quality != DefaultQuality {
		setInt("quality", s.Quality)
	}
	setBool("lossless", s.Lossless)
	setBool("progressive", s.Progressive)
	if s.KeepMetadata {
		p["strip"] = "false"
	}
	return p
}

// Canonical returns the spec as a query string holding only non-default
// parameters, sorted by name, values in one spelling (query-escaped): two
// specs that mean the same give the same string. It parses back with
// ParseCanonical.
func (s Spec) Canonical() string { return encodeParams(s.params(), "&") }

func encodeParams(p map[string]string, sep string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p[k]))
	}
	return b.String()
}
