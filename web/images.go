package web

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/roles"
	"github.com/imgpipe/imgpipe/store"
)

// getImage is GET /v1/images/{id}.
func (a *API) getImage(c echo.Context) error {
	img, err := a.pipe.Lookup(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewOf(img))
}

// getResult is GET /v1/images/{id}/result[?variant=][&wait=].
func (a *API) getResult(c echo.Context) error {
	wait, err := a.parseWait(c.QueryParam("wait"))
	if err != nil {
		return err
	}
	img, err := a.awaitFinal(c.Request().Context(), c.Param("id"), wait)
	if err != nil {
		return err
	}
	switch img.Status {
	case model.StatusFailed:
		return newError(http.StatusUnprocessableEntity, cmp.Or(img.ErrorCode, roles.CodeTransformFailed), img.Error)
	case model.StatusDone:
		return a.sendResult(c, img, c.QueryParam("variant"))
	}
	if c.Request().Header.Get("If-Match") != "" {
		// No result yet: no tag, not even "*", can match (RFC 9110 13.1.1).
		return newError(http.StatusPreconditionFailed, "precondition_failed", preconditionFailed)
	}
	return c.JSON(http.StatusAccepted, viewOf(img))
}

// sendResult writes a done image's variant (the first when none is named).
// Results never change for an id, so the digest is a strong ETag and
// clients may cache for good.
func (a *API) sendResult(c echo.Context, img *model.Image, variant string) error {
	var res model.Result
	switch {
	case variant != "":
		r, ok := img.Result(variant)
		if !ok {
			return newError(http.StatusNotFound, "no_variant", fmt.Sprintf("image %s has no variant %q", img.ID, variant))
		}
		res = r
	case len(img.Results) > 0:
		res = img.Results[0]
	default:
		return newError(http.StatusInternalServerError, "internal", "done image without results")
	}
	return a.sendBlob(c, model.ResultKey(img.ID, res.Variant), res.Info, true)
}

// sendBlob answers with the bytes under key, described by info. verify
// has staged bytes checked against info's digest (roles.API.Blob): a
// result's; an original's key names its digest already.
func (a *API) sendBlob(c echo.Context, key string, info model.Info, verify bool) error {
	etag := `"` + info.SHA256 + `"`
	if im := c.Request().Header.Get("If-Match"); im != "" && !strongMatch(im, etag) {
		// Checked before If-None-Match, as RFC 9110 orders them.
		return newError(http.StatusPreconditionFailed, "precondition_failed", preconditionFailed)
	}
	// The bytes under an id never change: a cache may keep them for good.
	// Refusals below take the two headers back off (uncacheable).
	h := c.Response().Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	if etagMatches(c.Request().Header.Get("If-None-Match"), etag) {
		return c.NoContent(http.StatusNotModified)
	}
	h.Set(echo.HeaderContentType, contentType(info.Format))
	if c.Request().Method == http.MethodHead && info.Size > 0 && c.Request().Header.Get("Range") == "" {
		// The record knows the length: a HEAD need not fetch the bytes,
		// which for a stored camera original means reading megabytes.
		h.Set(echo.HeaderContentLength, strconv.FormatInt(info.Size, 10))
		h.Set("Accept-Ranges", "bytes")
		return c.NoContent(http.StatusOK)
	}
	digest := ""
	if verify {
		digest = info.SHA256
	}
	data, err := a.pipe.Blob(c.Request().Context(), key, digest)
	if err != nil {
		uncacheable(h) // a 503 kept for a year would outlast the outage
		return err
	}
	h.Set("Accept-Ranges", "bytes")
	if !strings.HasPrefix(c.Request().Header.Get("Range"), "bytes=") {
		// The whole (a range in another unit is ignored, as RFC 9110
		// asks). Length said outright: net/http only works it out for
		// small bodies, so a GET would be chunked.
		h.Set(echo.HeaderContentLength, strconv.Itoa(len(data)))
		return c.Blob(http.StatusOK, contentType(info.Format), data)
	}
	// net/http answers Range (one part: 206; several: multipart/byteranges)
	// and its conditions (If-Range against the ETag set above); its
	// refusals are plain text, made JSON by partWriter.
	asked := c.Request().Header.Get("Range")
	c.Request().Header.Set("Range", mendSuffix(asked, len(data)))
	w := &partWriter{Response: c.Response(), asked: asked, size: len(data)}
	http.ServeContent(w, c.Request(), "", time.Time{}, bytes.NewReader(data))
	return nil
}

// mendSuffix rewrites the two suffix ranges net/http answers otherwise than
// RFC 9110 into ranges it answers right: "bytes=-0" asks for no byte, which
// is unsatisfiable (net/http sent an empty 206 "bytes 91-90/91"), and a
// suffix too long for an int64 asks for every byte (net/http refused it).
func mendSuffix(r string, size int) string {
	suffix, ok := strings.CutPrefix(strings.TrimSpace(r), "bytes=-")
	if !ok || suffix == "" || strings.Trim(suffix, "0123456789") != "" {
		return r
	}
	if strings.Trim(suffix, "0") == "" {
		return "bytes=" + strconv.Itoa(size) + "-" // past the end: 416
	}
	if _, err := strconv.ParseInt(suffix, 10, 64); err != nil {
		return "bytes=0-"
	}
	return r
}

// uncacheable takes back what sendBlob set for the bytes from an answer
// that is not them.
func uncacheable(h http.Header) {
	h.Del("Cache-Control")
	h.Del("ETag")
}

const preconditionFailed = "the If-Match or If-Unmodified-Since condition does not hold for this image"

// strongMatch reads If-Match: "*" or a list of tags, compared strongly (RFC
// 9110): a weak tag never matches.
func strongMatch(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		if t = strings.TrimSpace(t); t == "*" || t == etag {
			return true
		}
	}
	return false
}

// partWriter passes http.ServeContent's answer through, except a refusal
// (416 for a range outside the bytes, 412 for an If-Match that does not
// hold), whose plain text it replaces with the API's JSON error. Headers
// set before, such as Content-Range: bytes */size, stay.
type partWriter struct {
	*echo.Response
	asked   string // the Range header
	size    int
	refused bool
}

func (w *partWriter) WriteHeader(status int) {
	if status < 400 {
		w.Response.WriteHeader(status)
		return
	}
	w.refused = true // net/http has taken Cache-Control and ETag off
	var ae *apiError
	switch {
	case status == http.StatusRequestedRangeNotSatisfiable && !wellFormedRange(w.asked):
		ae = newError(status, "bad_range", fmt.Sprintf("range %q is malformed: want bytes=first-last, bytes=first- or bytes=-length, counted from 0 in the image's %d bytes", w.asked, w.size))
	case status == http.StatusRequestedRangeNotSatisfiable:
		ae = newError(status, "bad_range", fmt.Sprintf("range %q cannot be served: the image has %d bytes", w.asked, w.size))
	case status == http.StatusPreconditionFailed:
		ae = newError(status, "precondition_failed", preconditionFailed)
	default:
		ae = newError(status, codeFor(status), http.StatusText(status))
	}
	var buf bytes.Buffer
	_ = encodeJSON(&buf, errorBody(ae), "")
	body := buf.Bytes()
	w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	w.Header().Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	w.Response.WriteHeader(status)
	_, _ = w.Response.Write(body)
}

// rangeSpec is one range of a byte Range header (RFC 9110 14.1.1).
var rangeSpec = regexp.MustCompile(`^(?:(\d+)-(\d*)|-\d+)$`)

// wellFormedRange tells whether a byte Range header is well formed (each
// range first-last, first- or -length, and first not past last), so that
// a refusal can tell a malformed one from one outside the bytes; net/http
// answers both with a bare 416.
func wellFormedRange(header string) bool {
	specs, ok := strings.CutPrefix(strings.TrimSpace(header), "bytes=")
	if !ok {
		return false
	}
	for spec := range strings.SplitSeq(specs, ",") {
		m := rangeSpec.FindStringSubmatch(strings.TrimSpace(spec))
		if m == nil {
			return false
		}
		if m[1] != "" && m[2] != "" {
			first, err1 := strconv.ParseUint(m[1], 10, 64)
			last, err2 := strconv.ParseUint(m[2], 10, 64)
			if err1 == nil && err2 == nil && first > last {
				return false
			}
		}
	}
	return true
}

func (w *partWriter) Write(b []byte) (int, error) {
	if w.refused {
		return len(b), nil // net/http's text, replaced above
	}
	return w.Response.Write(b)
}

// getOriginal is GET /v1/images/{id}/original: the bytes as uploaded.
func (a *API) getOriginal(c echo.Context) error {
	img, err := a.pipe.Lookup(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return a.sendBlob(c, model.OriginalKey(img.ID), img.Original, false)
}

// getActivity is GET /v1/images/{id}/activity.
func (a *API) getActivity(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	if _, err := a.pipe.Lookup(ctx, id); err != nil {
		return err
	}
	events, err := a.pipe.Activity(ctx, id)
	if err != nil {
		return err
	}
	if events == nil {
		events = []model.Event{}
	}
	return c.JSON(http.StatusOK, map[string]any{"id": id, "events": events})
}

// recentActivity is GET /v1/activity?limit=: the global feed, newest first.
func (a *API) recentActivity(c echo.Context) error {
	limit, err := parseLimit(c, 100)
	if err != nil {
		return err
	}
	events, err := a.pipe.Recent(c.Request().Context(), limit)
	if err != nil {
		return err
	}
	if events == nil {
		events = []model.Event{}
	}
	return c.JSON(http.StatusOK, map[string]any{"events": events})
}

// listImages is GET /v1/images?status=&limit=&cursor=.
func (a *API) listImages(c echo.Context) error {
	q := store.ListQuery{Status: model.Status(c.QueryParam("status")), Cursor: c.QueryParam("cursor")}
	if q.Status != "" && !q.Status.Valid() {
		return newError(http.StatusBadRequest, "bad_status", "status must be queued, processing, done or failed")
	}
	limit, err := parseLimit(c, 0) // 0: the store's default
	if err != nil {
		return err
	}
	q.Limit = limit
	page, err := a.pipe.List(c.Request().Context(), q)
	if err != nil {
		return err
	}
	views := make([]*imageView, len(page.Images))
	for i := range page.Images {
		views[i] = viewOf(&page.Images[i])
	}
	return c.JSON(http.StatusOK, map[string]any{"images": views, "next_cursor": page.Next})
}

// parseLimit reads ?limit=, 1 to store.MaxListLimit; def when absent.
func parseLimit(c echo.Context, def int) (int, error) {
	s := c.QueryParam("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > store.MaxListLimit {
		return 0, newError(http.StatusBadRequest, "bad_limit", fmt.Sprintf("limit must be a whole number from 1 to %d", store.MaxListLimit))
	}
	return n, nil
}

func (a *API) parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if n, nerr := strconv.Atoi(s); nerr == nil {
			// Capped before it is multiplied: wait=10000000000 would
			// overflow into a short or negative duration.
			d, err = time.Duration(min(n, int(a.cfg.MaxWait/time.Second)+1))*time.Second, nil
		}
	}
	if err != nil || d < 0 {
		return 0, newError(http.StatusBadRequest, "bad_wait", "wait must be a duration such as 30s, or whole seconds such as 30")
	}
	return min(d, a.cfg.MaxWait), nil
}

// awaitFinal looks the image up, and while it is pending and wait allows,
// looks again whenever its record is written (or, failing word of that,
// now and then). The shared status table keeps every instance stateless:
// the instance waiting need not be the one that took the upload.
func (a *API) awaitFinal(ctx context.Context, id string, wait time.Duration) (*model.Image, error) {
	deadline := time.Now().Add(wait)
	var woken <-chan struct{}
	if wait > 0 {
		// Before the first look, so that no write after it goes unseen.
		var release func()
		woken, release = a.waiters.wait(id)
		defer release()
	}
	delay := pollFirst
	for {
		img, err := a.pipe.Lookup(ctx, id)
		if err != nil || img.Status.Final() || time.Now().After(deadline) {
			return img, err
		}
		select {
		case <-ctx.Done():
			return img, nil
		case <-a.stopping:
			return img, nil // answer what is known: 202 while pending
		case <-woken:
		case <-time.After(min(delay, time.Until(deadline))):
			delay = min(delay*2, pollMax)
		}
	}
}
