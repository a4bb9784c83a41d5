package transform

/*
#include "vips_bridge.h"
*/
import "C"

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"runtime"
	"unsafe"

	"github.com/imgpipe/imgpipe/model"
)

// inspection is what Probe learns, plus what Process needs besides Info.
type inspection struct {
	info        model.Info
	format      format
	orientation int // 1..8
	pages       int // frames (gif/webp) or pages (tiff/pdf/heif)
	animated    bool
	icc         bool // carries an ICC profile: convert to sRGB
}

// Probe sniffs the upload's type from its bytes, checks its structure and
// header against the limits and describes it, without decoding pixels:
// a 30000x30000 PNG of a few hundred KB is refused in microseconds.
// Errors are *Error: 400 empty body; 415 not an image, unsupported, or SVG
// or PDF while disabled; 422 truncated, corrupt, unsafe SVG, or over a limit.
func (e *Engine) Probe(data []byte) (model.Info, error) {
	if err := e.checkOpen(); err != nil {
		return model.Info{}, err
	}
	in, err := e.inspect(data, true)
	if err != nil {
		return model.Info{}, err
	}
	sum := sha256.Sum256(data)
	in.info.SHA256 = hex.EncodeToString(sum[:])
	return in.info, nil
}

// inspect checks an input as Probe describes. describe fills in the parts
// of Info that only Probe reports (colour space, alpha, ICC description,
// EXIF summary); Process needs the checks and the geometry alone.
func (e *Engine) inspect(data []byte, describe bool) (inspection, error) {
	var in inspection
	if len(data) == 0 {
		return in, errorf(http.StatusBadRequest, CodeEmptyBody, "the upload is empty: send the image's bytes as the body, or as a file part")
	}
	f := sniff(data)
	switch {
	case f == fmtUnknown:
		return in, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedType,
			"unsupported image type: accepted are JPEG, PNG, WebP, GIF, TIFF, AVIF and HEIF%s", e.vectorNote())
	case f == fmtSVG && !e.cfg.AllowSVG:
		return in, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedType, "SVG input is disabled")
	case f == fmtPDF && !e.cfg.AllowPDF:
		return in, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedType, "PDF input is disabled")
	case f == fmtSVG:
		if err := checkSVG(data); err != nil {
			return in, err
		}
	}
	in.format = f

	l, err := walkStructure(f, data, e.cfg.MaxFrames)
	if err != nil {
		if errors.Is(err, errTruncated) {
			return in, &Error{Status: http.StatusUnprocessableEntity, Code: CodeTruncated,
				Message: "the " + f.String() + " file is truncated", Err: err}
		}
		return in, &Error{Status: http.StatusUnprocessableEntity, Code: CodeCorrupt,
			Message: "the " + f.String() + " file is corrupt", Err: err}
	}
	// First limits check on our own reading, before libvips parses anything.
	if err := e.checkPixels(l.width, l.height); err != nil {
		return in, err
	}
	if f.animatable() {
		if err := e.checkFrames(l.frames); err != nil {
			return in, err
		}
	}
	if l.scans > maxScans {
		return in, unprocessable(CodeTooLarge, "the jpeg has %d scans, the limit is %d", l.scans, maxScans)
	}
	if f == fmtJPEG && !describe {
		err = e.jpegInspection(l, &in)
	} else {
		err = e.readHeader(data, &in, describe)
	}
	if err != nil {
		return in, err
	}
	in.info.Size = int64(len(data))
	return in, nil
}

// jpegInspection fills in what Process needs of a JPEG from the walk of
// its markers (jpegHeader), with readHeader's checks.
func (e *Engine) jpegInspection(l layout, in *inspection) error {
	bands := int64(max(l.jpeg.components, 1))
	if err := e.checkDecoded(int64(l.width)*int64(l.height)*bands, "the decoded input"); err != nil {
		return err
	}
	in.pages, in.orientation, in.icc = 1, exifOrientation(l.jpeg.exif), iccUsable(l.jpeg.profile())
	in.info = model.Info{Format: in.format.String(), Width: l.width, Height: l.height,
		Orientation: in.orientation, Pages: 1}
	return nil
}

// header has libvips parse the header of data (no pixels) into vc. The
// image refers to data, which pin holds in place: unpin only after vc is
// closed.
func header(vc *vctx, pin *runtime.Pinner, data []byte, f format) (*C.VipsImage, error) {
	pin.Pin(&data[0])
	return vc.do("header", func(out **C.VipsImage) C.int {
		return C.ip_header(unsafe.Pointer(&data[0]), C.size_t(len(data)), C.int(f), out)
	})
}

// readHeader has libvips parse the header (no pixels) and fills Info.
func (e *Engine) readHeader(data []byte, in *inspection, describe bool) error {
	var pin runtime.Pinner
	defer pin.Unpin()
	var vc vctx
	defer vc.close()
	im, err := header(&vc, &pin, data, in.format)
	if err != nil {
		e.log.Warn("image header unreadable", "format", in.format.String(), "err", err)
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeCorrupt,
			Message: "the " + in.format.String() + " header could not be read", Err: err}
	}
	g := geom(im) // loaded with one page: height is a page's
	in.pages = max(1, int(C.ip_n_pages(im)))
	in.animated = in.format.animatable() && in.pages > 1
	in.orientation = int(C.ip_orientation(im))
	if in.orientation < 1 || in.orientation > 8 {
		in.orientation = 1
	}
	if err := e.checkPixels(g.width, g.pageHeight); err != nil {
		return err
	}
	frames := 1
	if in.animated {
		if err := e.checkFrames(in.pages); err != nil {
			return err
		}
		frames = in.pages
	}
	bands := int64(C.ip_bands(im)) * int64(C.ip_sample_size(im))
	if in.format == fmtGIF {
		bands = 4 // libnsgif always decodes to RGBA
	}
	if err := e.checkDecoded(int64(g.width)*int64(g.pageHeight)*bands*int64(frames), "the decoded input"); err != nil {
		return err
	}

	info := model.Info{
		Format:      in.format.String(),
		Width:       g.width,
		Height:      g.pageHeight,
		Orientation: in.orientation,
		Pages:       in.pages,
		Animated:    in.animated,
	}
	if !describe {
		in.icc = C.ip_has_icc(im) != 0
		in.info = info
		return nil
	}
	icc := blob(im, "icc-profile-data")
	in.icc = iccUsable(icc)
	info.ColorSpace = interpretation(im)
	info.Alpha = hasAlpha(im)
	info.ICCProfile = iccDescription(icc)
	exif := blob(im, "exif-data")
	if exif == nil && in.format == fmtTIFF {
		exif = data // TIFF tags are EXIF's IFD0
	}
	if x := exifSummary(exif); x != nil && *x != (model.EXIF{}) {
		info.EXIF = x // nothing worth showing stays nil
	}
	in.info = info
	return nil
}

func (e *Engine) vectorNote() string {
	switch {
	case e.cfg.AllowSVG && e.cfg.AllowPDF:
		return ", SVG and PDF"
	case e.cfg.AllowSVG:
		return " and SVG"
	case e.cfg.AllowPDF:
		return " and PDF"
	}
	return ""
}
