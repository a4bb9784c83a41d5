package transform

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Config bounds what one image may cost and names the specs used when the
// upload does not say. Zero values are not defaults: start from DefaultConfig.
type Config struct {
	// MaxInputPixels caps width*height of one frame, read from the header
	// before anything is decoded.
	MaxInputPixels int64 `mapstructure:"max_input_pixels"`
	// MaxFrames caps the frames of an animation; more is refused at Probe.
	MaxFrames int `mapstructure:"max_frames"`
	// MaxOutputDim caps the width and height asked for and produced.
	MaxOutputDim int `mapstructure:"max_output_dimension"`
	// MaxOutputPixels caps width*height*frames of a result: an upload of
	// a few hundred bytes may otherwise ask for 268 million pixels.
	// Encoders that cannot be interrupted get less (see encodeCap).
	MaxOutputPixels int64 `mapstructure:"max_output_pixels"`
	// MaxDecodedBytes caps width*height*bands*bytes-per-sample*frames, the
	// memory a full decode would take, estimated from the header (and the
	// same estimate for the output before it is rendered).
	MaxDecodedBytes int64 `mapstructure:"max_decoded_bytes"`
	// Timeout bounds one Process call. Pixel work is interrupted through
	// libvips' kill flag; see docs/transform.md for what cannot be.
	Timeout time.Duration `mapstructure:"timeout"`
	// AllowSVG and AllowPDF accept vector inputs (librsvg, poppler): off by
	// default because their parsers are large attack surfaces.
	AllowSVG bool `mapstructure:"allow_svg"`
	AllowPDF bool `mapstructure:"allow_pdf"`
	// VipsConcurrency is libvips' worker threads per operation. The pipeline
	// already runs one image per transform worker, so more threads per image
	// mostly add contention and memory; 1 keeps a worker to one core.
	VipsConcurrency int `mapstructure:"vips_concurrency"`
	// VipsCacheMaxOps is libvips' operation cache size. Every upload is a
	// different image, so caching operations only holds memory.
	VipsCacheMaxOps int `mapstructure:"vips_cache_max_ops"`
	// DefaultSpec is used, as variant "default", when the upload gives no
	// parameter at all.
	DefaultSpec string `mapstructure:"default_spec"`
	// Presets are named specs (query strings) used through preset=NAME.
	Presets map[string]string `mapstructure:"presets"`
}

// Default limits and specs.
const (
	DefaultMaxInputPixels  = 100_000_000
	DefaultMaxFrames       = 200
	DefaultMaxOutputDim    = 16384
	DefaultMaxOutputPixels = 100_000_000
	DefaultMaxDecodedBytes = 1 << 30
	DefaultTimeout         = 60 * time.Second
	DefaultSpecQuery       = "width=1600&height=1600&fit=inside&format=webp&quality=80"
)

// DefaultConfig returns the limits above and three presets: thumb (a square
// smart-cropped thumbnail), preview (fits 800x800) and web (fits 1920x1920,
// keeping the input's format).
func DefaultConfig() Config {
	return Config{
		MaxInputPixels:  DefaultMaxInputPixels,
		MaxFrames:       DefaultMaxFrames,
		MaxOutputDim:    DefaultMaxOutputDim,
		MaxOutputPixels: DefaultMaxOutputPixels,
		MaxDecodedBytes: DefaultMaxDecodedBytes,
		Timeout:         DefaultTimeout,
		VipsConcurrency: 1,
		VipsCacheMaxOps: 0,
		DefaultSpec:     DefaultSpecQuery,
		Presets: map[string]string{
			"thumb":   "width=200&height=200&fit=cover&gravity=smart&format=webp&quality=75",
			"preview": "width=800&height=800&fit=inside&format=webp&quality=80",
			"web":     "width=1920&height=1920&fit=inside&format=auto&quality=85",
		},
	}
}

// Validate reports every problem at once, each naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("transform."+key+": "+format, args...))
	}
	if c.MaxInputPixels < 1 {
		bad("max_input_pixels", "must be at least 1, got %d", c.MaxInputPixels)
	}
	if c.MaxFrames < 1 || c.MaxFrames > 10_000 {
		bad("max_frames", "must be from 1 to 10000, got %d", c.MaxFrames)
	}
	if c.MaxOutputDim < 16 || c.MaxOutputDim > maxCoord {
		bad("max_output_dimension", "must be from 16 to %d, got %d", maxCoord, c.MaxOutputDim)
	}
	if c.MaxOutputPixels < 1 {
		bad("max_output_pixels", "must be at least 1, got %d", c.MaxOutputPixels)
	}
	if c.MaxDecodedBytes < 1<<20 {
		bad("max_decoded_bytes", "must be at least 1 MiB, got %d", c.MaxDecodedBytes)
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive, got %s", c.Timeout)
	}
	if c.VipsConcurrency < 1 || c.VipsConcurrency > 64 {
		bad("vips_concurrency", "must be from 1 to 64, got %d", c.VipsConcurrency)
	}
	if c.VipsCacheMaxOps < 0 {
		bad("vips_cache_max_ops", "must not be negative, got %d", c.VipsCacheMaxOps)
	}
	if _, err := parseSpecQuery(c.DefaultSpec, c.limits()); err != nil {
		hint := ""
		if c.DefaultSpec == DefaultSpecQuery {
			hint = " (the built-in default: give another within the limits)"
		}
		bad("default_spec", "%s%s", publicMessage(err), hint)
	}
	names := make([]string, 0, len(c.Presets))
	for name := range c.Presets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !validName(name) {
			bad("presets", "name %q must match [a-z0-9_-]{1,32}", name)
			continue
		}
		if name == DefaultVariantName {
			// Results are named after their variant, and "default" already
			// names the result of an upload without a spec.
			bad("presets", "name %q is reserved for the result of an upload without a spec (default_spec)", name)
			continue
		}
		if _, err := parseSpecQuery(c.Presets[name], c.limits()); err != nil {
			hint := ""
			if builtin, ok := DefaultConfig().Presets[name]; ok && builtin == c.Presets[name] {
				hint = " (a built-in preset: give it another spec, or remove it with an empty one)"
			}
			bad("presets."+name, "%s%s", publicMessage(err), hint)
		}
	}
	return errors.Join(errs...)
}

// limits is what the spec parser needs from the config.
func (c Config) limits() parseLimits {
	return parseLimits{maxDim: c.MaxOutputDim}
}

func publicMessage(err error) string {
	if e, ok := AsError(err); ok {
		return e.Message
	}
	return err.Error()
}
