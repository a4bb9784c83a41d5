package transform

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// MaxVariants caps the outputs one upload may ask for.
const MaxVariants = 10

// Request is everything one upload asks for: one or more named outputs.
type Request struct{ Variants []Variant }

// Variant is one named output.
type Variant struct {
	Name string
	Spec Spec
}

// ParseRequest validates the upload's query. Parameters (see
// docs/transform.md) apply to every variant; preset=a,b asks for one variant
// per preset; variant=NAME:k=v;k=v (repeatable, ';' or '|' between pairs,
// values query-escaped once more) adds named variants. Top-level parameters
// override presets, a variant's own parameters override both. With no
// parameter at all the config's DefaultSpec is used as variant "default".
// Every problem is an *Error with Status 400 naming the parameter.
func (e *Engine) ParseRequest(q url.Values) (Request, error) {
	return parseRequest(q, e.cfg)
}

// ParseRequestString is ParseRequest on a raw query string. Prefer it when
// variants are used: net/url drops any pair holding a raw ';', this does not.
func (e *Engine) ParseRequestString(rawQuery string) (Request, error) {
	kvs, err := splitParams(rawQuery, "&")
	if err != nil {
		return Request{}, err
	}
	q := url.Values{}
	for _, kv := range kvs {
		q.Add(kv[0], kv[1])
	}
	req, err := parseRequest(q, e.cfg)
	if pe, ok := AsError(err); ok && pe.Code == CodeInvalidParameter {
		// width=10;height=20 reads as one width of "10;height=20": say that
		// ';' separates only a variant's parameters. (A ';' in a value that
		// is fine, a watermark's text, is no mistake.)
		name, _, _ := strings.Cut(pe.Message, ": ")
		if name != "variant" && strings.Contains(q.Get(name), ";") {
			pe.Message += `; separate parameters with "&" (";" separates them only inside a variant)`
		}
	}
	return req, err
}

func parseRequest(q url.Values, cfg Config) (Request, error) {
	lim := cfg.limits()
	top := map[string]string{}
	var presets []string
	for key, vals := range q {
		if key == "variant" {
			continue
		}
		if _, ok := specParams[key]; !ok && key != "preset" {
			return Request{}, badParam(key, "unknown parameter")
		}
		if len(vals) != 1 {
			return Request{}, badParam(key, "given %d times, at most once allowed", len(vals))
		}
		if key == "preset" {
			presets = strings.Split(vals[0], ",")
			continue
		}
		top[key] = vals[0]
	}
	// Check top-level values once so that errors name the parameter alone.
	if _, err := specFromParams(top, lim); err != nil {
		return Request{}, err
	}

	var req Request
	seen := map[string]bool{}
	add := func(name string, params map[string]string, ctx string) error {
		if seen[name] {
			return badParam(ctx, "variant name %q used twice", name)
		}
		seen[name] = true
		if len(seen) > MaxVariants {
			return badParam(ctx, "at most %d variants", MaxVariants)
		}
		spec, err := specFromParams(params, lim)
		if err != nil {
			return prefixError(err, "variant "+name+": ")
		}
		req.Variants = append(req.Variants, Variant{Name: name, Spec: spec})
		return nil
	}

	for _, name := range presets {
		base, err := presetParams(cfg, name, "preset")
		if err != nil {
			return Request{}, err
		}
		if err := add(name, overlay(base, top), "preset"); err != nil {
			return Request{}, err
		}
	}
	for _, raw := range q["variant"] {
		name, own, err := parseVariant(raw)
		if err != nil {
			return Request{}, err
		}
		base := map[string]string{}
		if p, ok := own["preset"]; ok {
			if base, err = presetParams(cfg, p, "variant "+name+": preset"); err != nil {
				return Request{}, err
			}
			delete(own, "preset")
		}
		if err := add(name, overlay(overlay(base, top), own), "variant"); err != nil {
			return Request{}, err
		}
	}
	if len(req.Variants) == 0 {
		params := top
		if len(q) == 0 {
			var err error
			if params, err = queryParams(cfg.DefaultSpec); err != nil {
				return Request{}, err
			}
		}
		if err := add(DefaultVariantName, params, "request"); err != nil {
			return Request{}, err
		}
	}
	req.sort()
	return req, nil
}

// DefaultVariantName names the variant of a request without presets or
// variants (model.DefaultVariant).
const DefaultVariantName = "default"

func presetParams(cfg Config, name, ctx string) (map[string]string, error) {
	if !validName(name) {
		return nil, badParam(ctx, "preset name %q must match [a-z0-9_-]{1,32}", name)
	}
	q, ok := cfg.Presets[name]
	if !ok {
		known := make([]string, 0, len(cfg.Presets))
		for k := range cfg.Presets {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, badParam(ctx, "unknown preset %q (known: %s)", name, strings.Join(known, ", "))
	}
	return queryParams(q)
}

// parseVariant splits "NAME:k=v;k=v" into the name and its parameters.
func parseVariant(raw string) (string, map[string]string, error) {
	name, inner, ok := strings.Cut(raw, ":")
	if !ok || !validName(name) {
		return "", nil, badParam("variant", "must be NAME:key=value;key=value with NAME matching [a-z0-9_-]{1,32}, got %q", raw)
	}
	kvs, err := splitParams(inner, ";|")
	if err != nil {
		return "", nil, prefixError(err, "variant "+name+": ")
	}
	own := map[string]string{}
	for _, kv := range kvs {
		k, v := kv[0], kv[1]
		if _, ok := specParams[k]; !ok && k != "preset" {
			return "", nil, badParam("variant "+name+": "+k, "unknown parameter")
		}
		if _, dup := own[k]; dup {
			return "", nil, badParam("variant "+name+": "+k, "given twice")
		}
		own[k] = v
	}
	return name, own, nil
}

// splitParams splits k=v pairs on any of seps and query-unescapes both sides.
func splitParams(s, seps string) ([][2]string, error) {
	var out [][2]string
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(seps, r) }) {
		k, v, _ := strings.Cut(part, "=")
		ku, err1 := url.QueryUnescape(k)
		vu, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, errorf(http.StatusBadRequest, CodeInvalidParameter, "malformed escape in %q", part)
		}
		out = append(out, [2]string{ku, vu})
	}
	return out, nil
}

// queryParams parses a spec query string (presets, DefaultSpec, canonical).
func queryParams(s string) (map[string]string, error) {
	kvs, err := splitParams(s, "&")
	if err != nil {
		return nil, err
	}
	p := map[string]string{}
	for _, kv := range kvs {
		if _, ok := specParams[kv[0]]; !ok {
			return nil, badParam(kv[0], "unknown parameter")
		}
		if _, dup := p[kv[0]]; dup {
			return nil, badParam(kv[0], "given twice")
		}
		p[kv[0]] = kv[1]
	}
	return p, nil
}

func parseSpecQuery(s string, lim parseLimits) (Spec, error) {
	p, err := queryParams(s)
	if err != nil {
		return Spec{}, err
	}
	return specFromParams(p, lim)
}

// specFromParams builds a Spec, checking parameters in name order so the
// error reported for several bad ones is stable.
func specFromParams(p map[string]string, lim parseLimits) (Spec, error) {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s Spec
	for _, k := range keys {
		if err := specParams[k](&s, p[k], lim); err != nil {
			return Spec{}, err
		}
	}
	if s.WatermarkText != "" && s.WatermarkImage != "" {
		return Spec{}, badParam("watermark_image", "cannot be combined with watermark_text: choose one")
	}
	s.normalize()
	return s, nil
}

// normalize stores explicit defaults as zero so equal meanings compare equal.
func (s *Spec) normalize() {
	if s.WatermarkOpacity == DefaultWatermarkOpacity {
		s.WatermarkOpacity = 0
	}
}

func overlay(base, over map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

func prefixError(err error, prefix string) error {
	if e, ok := AsError(err); ok {
		c := *e
		c.Message = prefix + c.Message
		return &c
	}
	return err
}

func (r *Request) sort() {
	sort.Slice(r.Variants, func(i, j int) bool { return r.Variants[i].Name < r.Variants[j].Name })
}
