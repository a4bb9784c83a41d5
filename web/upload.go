package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/roles"
	"github.com/imgpipe/imgpipe/transform"
)

// upload is one file taken from a request body, or the reason it was not
// (err: a file of a batch over the size limit, refused on its own).
type upload struct {
	name string
	data []byte
	err  *apiError
}

// readUploads takes the image(s) of a request: the raw body, or every file
// part of a multipart form (field, when set, keeps only parts of that name,
// for the prototype's `image` field). Nothing is trusted about a file but
// its bytes: names are kept for display, types are detected later.
func (a *API) readUploads(c echo.Context, field string) ([]upload, error) {
	r := c.Request()
	max := a.cfg.MaxUploadBytes
	if ce := contentEncoding(r.Header); ce != "" {
		// Decoding it would put a decompression bomb before every limit;
		// taking the bytes as they are would store a compressed file as
		// the original, or refuse an image as "not an image".
		return nil, newError(http.StatusUnsupportedMediaType, "unsupported_encoding",
			fmt.Sprintf("Content-Encoding %q is not accepted: send the image's bytes as they are (images are compressed already)", ce))
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	if strings.HasPrefix(mediaType, "multipart/") && mediaType != "multipart/form-data" {
		return nil, newError(http.StatusUnsupportedMediaType, "unsupported_multipart",
			mediaType+" is not accepted: send files as multipart/form-data, or one image as the body")
	}
	if mediaType != "multipart/form-data" {
		if r.ContentLength > max {
			return nil, tooLarge(max)
		}
		if err := a.checkRoom(r); err != nil {
			return nil, err
		}
		data, err := readLimited(r.Body, max)
		if err != nil {
			return nil, err
		}
		if len(data) == 0 {
			return nil, newError(http.StatusBadRequest, "no_file", "the request has no image: send the bytes as the body or as multipart file parts")
		}
		return []upload{{data: data}}, nil
	}

	if r.ContentLength > a.cfg.MaxRequestBytes {
		// Refused before the budget is asked: a busy server would say 503,
		// and the client would retry a request that can never fit.
		return nil, requestTooLarge(a.cfg.MaxRequestBytes)
	}
	if err := a.checkRoom(r); err != nil {
		return nil, err
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, a.cfg.MaxRequestBytes)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, newError(http.StatusBadRequest, "bad_multipart", "malformed multipart body: "+err.Error())
	}
	var out []upload
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, bodyError(err)
		}
		if part.FileName() == "" || (field != "" && part.FormName() != field) {
			part.Close()
			continue
		}
		if len(out) == a.cfg.MaxFiles {
			return nil, newError(http.StatusRequestEntityTooLarge, "too_many_files", fmt.Sprintf("at most %d files per request", a.cfg.MaxFiles))
		}
		data, rerr := readLimited(part, max)
		part.Close() // reads what is left of it: the next part may fit
		if rerr != nil && rerr.Code != codeTooLarge {
			return nil, rerr
		}
		out = append(out, upload{name: part.FileName(), data: data, err: rerr})
	}
	if len(out) == 0 {
		return nil, newError(http.StatusBadRequest, "no_file", "the form has no file part"+fieldHint(field))
	}
	return out, nil
}

// checkRoom refuses an upload while the disk that holds staged images is
// short of room (roles.RoomError), counting the uploads this process holds
// and this one's declared length as already on it. It comes after every
// check of the request's headers (a client mistake is answered as one,
// not as a 503 to retry) and before the body is read.
func (a *API) checkRoom(r *http.Request) error {
	return a.pipe.CheckRoom(a.budget.used.Load() + max(r.ContentLength, 0))
}

// contentEncoding is the body's coding other than identity, every
// Content-Encoding header and list item read ("identity" alone, or none,
// is ""): a second header or item naming gzip codes the body as much as
// the first.
func contentEncoding(h http.Header) string {
	var codings []string
	for _, v := range h.Values(echo.HeaderContentEncoding) {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				codings = append(codings, c)
			}
		}
	}
	return strings.Join(codings, ", ")
}

func fieldHint(field string) string {
	if field == "" {
		return ""
	}
	return " named " + field
}

// readLimited reads at most max bytes, answering 413 past that without
// reading the rest.
func readLimited(r io.Reader, max int64) ([]byte, *apiError) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, max+1))
	if err != nil {
		return nil, bodyError(err)
	}
	if n > max {
		return nil, tooLarge(max)
	}
	return buf.Bytes(), nil
}

// bodyError tells a request over the whole-request limit (413) from a
// malformed one (400).
func bodyError(err error) *apiError {
	var mbe *http.MaxBytesError
	var spent *budgetSpent
	if errors.As(err, &spent) {
		return newError(http.StatusServiceUnavailable, codeBusy, spent.Error())
	}
	if errors.As(err, &mbe) {
		return requestTooLarge(mbe.Limit)
	}
	return newError(http.StatusBadRequest, "bad_body", "could not read the upload: "+err.Error())
}

// codeTooLarge is the code of a file, or a request, over its size limit.
const codeTooLarge = "too_large"

func tooLarge(max int64) *apiError {
	return newError(http.StatusRequestEntityTooLarge, codeTooLarge, "an image may be at most "+sizeOf(max))
}

func requestTooLarge(max int64) *apiError {
	return newError(http.StatusRequestEntityTooLarge, codeTooLarge, "a request may be at most "+sizeOf(max))
}

// accepted is one image's answer to an upload. A duplicate of a failed
// image carries the image's own error string, so a refusal is a separate
// type (refused): one struct with both would shadow it.
type accepted struct {
	*imageView
	Duplicate bool   `json:"duplicate,omitempty"`
	Filename  string `json:"filename,omitempty"`
}

// refused is one file of a batch that was not accepted.
type refused struct {
	Filename string    `json:"filename"`
	Error    *apiError `json:"error"`
}

// ingest probes and queues one upload.
func (a *API) ingest(c echo.Context, u upload, req transform.Request) (*model.Image, roles.Outcome, error) {
	if u.err != nil {
		a.metrics.Uploads.WithLabelValues(u.err.Code).Inc()
		return nil, "", u.err
	}
	info, err := a.pipe.Engine().Probe(u.data)
	if err == nil {
		err = req.CheckRequest(info) // e.g. an extract outside this image
	}
	if err == nil {
		err = a.pipe.Engine().CheckOutput(req, info) // e.g. a WebP over 16383 pixels wide
	}
	if err != nil {
		a.metrics.Uploads.WithLabelValues(classify(err).Code).Inc()
		return nil, "", err
	}
	info.Filename = sanitizeName(u.name)
	img, outcome, err := a.pipe.Ingest(c.Request().Context(), u.data, info, req)
	label := string(outcome)
	if err != nil {
		label = classify(err).Code
	}
	a.metrics.Uploads.WithLabelValues(label).Inc()
	return img, outcome, err
}

// parseSpec reads the transform spec from the raw query: net/url drops
// pairs holding a ';', which the variant syntax uses.
func (a *API) parseSpec(c echo.Context) (transform.Request, error) {
	return a.pipe.Engine().ParseRequestString(c.Request().URL.RawQuery)
}

// postImages is POST /v1/images?<spec>.
func (a *API) postImages(c echo.Context) error {
	req, err := a.parseSpec(c)
	if err != nil {
		return err
	}
	ups, err := a.readUploads(c, "")
	if err != nil {
		return err
	}
	if len(ups) == 1 && !isMultipart(c) {
		img, outcome, err := a.ingest(c, ups[0], req)
		if err != nil {
			return err
		}
		a.pipe.AwaitActivity(c.Request().Context())
		c.Response().Header().Set(echo.HeaderLocation, "/v1/images/"+img.ID)
		return c.JSON(http.StatusAccepted, accepted{imageView: viewOf(img), Duplicate: outcome != roles.Accepted})
	}
	// Several files: each gets its own answer; the request is accepted if
	// any image was, else it carries the first refusal's status.
	out := make([]any, 0, len(ups)) // accepted or refused
	status := 0
	for _, u := range ups {
		img, outcome, err := a.ingest(c, u, req)
		if err != nil {
			ae := classify(err)
			if status == 0 {
				status = ae.Status
			}
			out = append(out, refused{Filename: u.name, Error: ae})
			continue
		}
		status = http.StatusAccepted
		out = append(out, accepted{imageView: viewOf(img), Duplicate: outcome != roles.Accepted, Filename: u.name})
	}
	switch status {
	case http.StatusAccepted:
		a.pipe.AwaitActivity(c.Request().Context())
	case http.StatusServiceUnavailable:
		c.Response().Header().Set("Retry-After", "5")
	}
	if len(out) == 1 {
		switch one := out[0].(type) {
		case refused:
			return one.Error
		case accepted:
			c.Response().Header().Set(echo.HeaderLocation, "/v1/images/"+one.ID)
		}
		return c.JSON(status, out[0])
	}
	if status != http.StatusAccepted {
		// Nothing was accepted: the request failed, in the API's one error
		// shape, with each file's reason beside it.
		first := out[0].(refused).Error
		return c.JSON(status, map[string]any{"images": out, "error": newError(status, first.Code,
			fmt.Sprintf("none of the %d files was accepted; each one's reason is in images", len(out)))})
	}
	return c.JSON(status, map[string][]any{"images": out})
}

func isMultipart(c echo.Context) bool {
	return strings.HasPrefix(c.Request().Header.Get(echo.HeaderContentType), "multipart/")
}

// sanitizeName keeps a display name only: no path, bounded length.
func sanitizeName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if len(name) > maxNameBytes {
		// Cut at a character's start: mid-character, the record kept half
		// a character, which JSON then showed as U+FFFD.
		n := maxNameBytes
		for n > 0 && !utf8.RuneStart(name[n]) {
			n--
		}
		name = name[:n]
	}
	return name
}

// maxNameBytes bounds the file name kept with an upload.
const maxNameBytes = 200

// sizeOf says a limit as people read it, and exactly: "50 MiB (52428800
// bytes)".
func sizeOf(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB (%d bytes)", n>>20, n)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
	}
	return fmt.Sprintf("%d bytes", n)
}
