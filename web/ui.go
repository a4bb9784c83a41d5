package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// The UI is static: index.html, app.js and style.css, with no build step.
// It talks to the API of the same origin.
//
//go:embed ui
var uiFiles embed.FS

// uiAsset is one embedded file, ready to send.
type uiAsset struct {
	body    []byte
	gz      []byte // gzip of body, nil when that would not be smaller
	ctype   string
	etag    string // strong, quoted, of body
	version string // short content hash, the ?v= of the index's links
}

// uiCSP allows the page only what it uses: its own script, style and API,
// and blob: images for the local previews of files being uploaded.
const uiCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

var uiTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
}

// loadUI reads the embedded files once. index.html's links to the other
// assets get their content hash as ?v=, so that a versioned asset can be
// cached for good while index.html itself is revalidated on every load.
var loadUI = sync.OnceValue(func() map[string]*uiAsset {
	assets := map[string]*uiAsset{}
	err := fs.WalkDir(uiFiles, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := uiFiles.ReadFile(p)
		if err != nil {
			return err
		}
		assets[strings.TrimPrefix(p, "ui/")] = &uiAsset{body: body}
		return nil
	})
	if err != nil {
		panic("web: embedded UI: " + err.Error()) // the files are compiled in: cannot happen
	}
	for _, a := range assets {
		a.version = shortHash(a.body)
	}
	if idx, ok := assets["index.html"]; ok {
		body := idx.body
		for name, a := range assets {
			if name != "index.html" {
				body = bytes.ReplaceAll(body, []byte(`"/ui/`+name+`"`), []byte(`"/ui/`+name+`?v=`+a.version+`"`))
			}
		}
		idx.body = body
		idx.version = shortHash(body)
	}
	for name, a := range assets {
		a.ctype = uiContentType(name, a.body)
		a.etag = `"` + a.version + `"`
		a.gz = gzipped(a.body)
	}
	return assets
})

func shortHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func uiContentType(name string, body []byte) string {
	ext := path.Ext(name)
	if t, ok := uiTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return http.DetectContentType(body)
}

// gzipped compresses text assets; it returns nil when that does not pay.
func gzipped(b []byte) []byte {
	if len(b) < 512 {
		return nil
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		return nil
	}
	if err := zw.Close(); err != nil {
		return nil
	}
	if buf.Len() >= len(b)*9/10 {
		return nil
	}
	return buf.Bytes()
}

// MountUI serves the web UI: the page at /, its assets under /ui/.
func MountUI(e *echo.Echo) {
	assets := loadUI()
	index := assets["index.html"]
	page := func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", uiCSP)
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		// Revalidated on every load (cheap: 304 by ETag), so a new release
		// is picked up at once; the assets it links to are versioned.
		return sendUIAsset(c, index, "no-cache")
	}
	for _, p := range []string{"/", "/index.html"} {
		e.GET(p, page)
		e.HEAD(p, page)
	}
	asset := func(c echo.Context) error {
		name := c.Param("*")
		a, ok := assets[name]
		if !ok || name == "index.html" {
			return echo.NewHTTPError(http.StatusNotFound, "no such UI file")
		}
		cache := "no-cache"
		if v := c.QueryParam("v"); v != "" && v == a.version {
			cache = "public, max-age=31536000, immutable"
		}
		return sendUIAsset(c, a, cache)
	}
	e.GET("/ui/*", asset)
	e.HEAD("/ui/*", asset)
}

func sendUIAsset(c echo.Context, a *uiAsset, cacheControl string) error {
	h := c.Response().Header()
	h.Set("Cache-Control", cacheControl)
	// Each content coding is its own representation with its own tag.
	body, etag := a.body, a.etag
	if a.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(c.Request().Header.Get("Accept-Encoding")) {
			body, etag = a.gz, `"`+a.version+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	if etagMatches(c.Request().Header.Get("If-None-Match"), etag) {
		h.Del("Content-Encoding")
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, a.ctype, body)
}

// etagMatches reads If-None-Match: "*" or a list of tags, weak or strong
// (a GET compares weakly).
func etagMatches(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
