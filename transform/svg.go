package transform

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"regexp"
	"strings"
)

// SVG is accepted only when it cannot reach outside itself or run code:
// librsvg does not run scripts, but it does load referenced files and
// images, and the output may be served to browsers that would. The check
// parses the XML (entities and character references decoded, so encoded
// tricks are seen as what they are) and refuses, with a message naming
// the reason:
//   - script, foreignObject and embedding elements;
//   - on* event attributes, javascript: anywhere in an attribute;
//   - href/xlink:href other than a local #fragment or an inline raster
//     data: URI; url(...) in attributes or CSS other than url(#id);
//   - CSS @import, xml-stylesheet instructions, DOCTYPEs declaring
//     entities (billion laughs, external entities);
//   - anything that is not well-formed UTF-8 XML with an <svg> root.
var svgForbiddenElements = map[string]bool{
	"script": true, "foreignobject": true, "iframe": true, "embed": true,
	"object": true, "audio": true, "video": true, "handler": true, "listener": true,
}

var (
	cssURL      = regexp.MustCompile(`(?i)url\(\s*['"]?\s*([^'")\s]*)`)
	safeDataURI = regexp.MustCompile(`(?i)^data:image/(png|jpeg|gif|webp);`)
)

func unsafeSVG(format string, args ...any) *Error {
	return unprocessable(CodeUnsafeSVG, "SVG refused: "+format, args...)
}

func checkSVG(data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	root := true
	inStyle := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if root {
				return errorf(http.StatusUnsupportedMediaType, CodeUnsupportedType, "not an SVG image")
			}
			return nil
		}
		if err != nil {
			return unsafeSVG("not well-formed XML (%s)", err.Error())
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := strings.ToLower(t.Name.Local)
			if root && name != "svg" {
				return errorf(http.StatusUnsupportedMediaType, CodeUnsupportedType, "not an SVG image: root element is <%s>", t.Name.Local)
			}
			root = false
			if svgForbiddenElements[name] {
				return unsafeSVG("<%s> elements are not allowed", t.Name.Local)
			}
			if name == "style" {
				inStyle++
			}
			for _, a := range t.Attr {
				if err := checkSVGAttr(a); err != nil {
					return err
				}
			}
		case xml.EndElement:
			if strings.EqualFold(t.Name.Local, "style") && inStyle > 0 {
				inStyle--
			}
		case xml.CharData:
			if inStyle > 0 {
				if err := checkCSS(string(t)); err != nil {
					return err
				}
			}
		case xml.ProcInst:
			if strings.EqualFold(t.Target, "xml-stylesheet") {
				return unsafeSVG("external stylesheets are not allowed")
			}
		case xml.Directive:
			s := strings.ToUpper(string(t))
			if strings.Contains(s, "ENTITY") || strings.Contains(s, "[") {
				return unsafeSVG("DOCTYPE declarations with entities are not allowed")
			}
		}
	}
}

func checkSVGAttr(a xml.Attr) error {
	name := strings.ToLower(a.Name.Local)
	val := strings.TrimSpace(a.Value)
	lower := strings.ToLower(val)
	switch {
	case strings.HasPrefix(name, "on"):
		return unsafeSVG("event handler attribute %q is not allowed", a.Name.Local)
	case strings.Contains(strings.Join(strings.Fields(lower), ""), "javascript:"):
		return unsafeSVG("javascript: in attribute %q is not allowed", a.Name.Local)
	case name == "href" || name == "src":
		if !safeReference(val) {
			return unsafeSVG("reference %q in %q is not allowed: only #fragments and inline raster images", truncate(val, 60), a.Name.Local)
		}
	}
	return checkCSS(val)
}

// checkCSS refuses @import and url() that is not a local fragment.
func checkCSS(s string) error {
	lower := strings.ToLower(s)
	if strings.Contains(lower, "@import") {
		return unsafeSVG("CSS @import is not allowed")
	}
	if strings.Contains(lower, "expression(") {
		return unsafeSVG("CSS expression() is not allowed")
	}
	for _, m := range cssURL.FindAllStringSubmatch(s, -1) {
		if !safeReference(m[1]) {
			return unsafeSVG("url(%s) is not allowed: only url(#id)", truncate(m[1], 60))
		}
	}
	return nil
}

func safeReference(v string) bool {
	return strings.HasPrefix(v, "#") || safeDataURI.MatchString(v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
