package transform

import (
	"sort"
	"strings"
)

// Canonical returns the request in one deterministic spelling: a single
// "default" variant is its Spec.Canonical(); otherwise each variant, by name,
// as variant=NAME:k=v;k=v joined with '&' (presets already expanded).
func (r Request) Canonical() string {
	if len(r.Variants) == 1 && r.Variants[0].Name == DefaultVariantName {
		return r.Variants[0].Spec.Canonical()
	}
	vs := append([]Variant(nil), r.Variants...)
	sort.Slice(vs, func(i, j int) bool { return vs[i].Name < vs[j].Name })
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = "variant=" + v.Name + ":" + encodeParams(v.Spec.params(), ";")
	}
	return strings.Join(parts, "&")
}

// ParseCanonical re-parses a string made by Request.Canonical (the transform
// role receives it in a message). Size limits are checked again by Process.
func ParseCanonical(s string) (Request, error) {
	if !strings.HasPrefix(s, "variant=") {
		spec, err := parseSpecQuery(s, canonicalLimits)
		if err != nil {
			return Request{}, err
		}
		return Request{Variants: []Variant{{Name: DefaultVariantName, Spec: spec}}}, nil
	}
	var req Request
	seen := map[string]bool{}
	for _, part := range strings.Split(s, "&") {
		raw, ok := strings.CutPrefix(part, "variant=")
		if !ok {
			return Request{}, badParam("variant", "canonical request mixes variants and plain parameters")
		}
		name, p, err := parseVariant(raw)
		if err != nil {
			return Request{}, err
		}
		if _, ok := p["preset"]; ok || seen[name] {
			return Request{}, badParam("variant", "%q is not canonical", raw)
		}
		seen[name] = true
		spec, err := specFromParams(p, canonicalLimits)
		if err != nil {
			return Request{}, prefixError(err, "variant "+name+": ")
		}
		req.Variants = append(req.Variants, Variant{Name: name, Spec: spec})
	}
	if len(req.Variants) > MaxVariants {
		return Request{}, badParam("variant", "at most %d variants", MaxVariants)
	}
	req.sort()
	return req, nil
}

// WatermarkIDs lists, sorted and without repeats, the image ids the variants
// use as watermark_image: the caller fetches them into Input.Watermarks.
func (r Request) WatermarkIDs() []string {
	set := map[string]bool{}
	for _, v := range r.Variants {
		if id := v.Spec.WatermarkImage; id != "" {
			set[id] = true
		}
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
