package transform

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// Error is what every exported function returns on failure: an HTTP status,
// a stable machine code and a message that is safe to show to the uploader.
// Err keeps the internal cause (libvips text and the like) for the log only.
type Error struct {
	Status  int
	Code    string
	Message string
	Err     error
}

// Error codes, stable for clients.
const (
	CodeEmptyBody        = "empty_body"
	CodeInvalidParameter = "invalid_parameter"
	CodeUnsupportedType  = "unsupported_type"
	CodeUnsafeSVG        = "unsafe_svg"
	CodeTruncated        = "truncated"
	CodeCorrupt          = "corrupt"
	CodeTooLarge         = "too_large"
	CodeTooManyFrames    = "too_many_frames"
	CodeOutOfBounds      = "out_of_bounds"
	CodeUndecodable      = "undecodable"
	CodeUnencodable      = "unencodable"        // the encoder cannot write this output
	CodeWatermark        = "watermark_unusable" // missing or unusable watermark image
	CodeTimeout          = "timeout"
	CodeCanceled         = "canceled"
	CodeInternal         = "internal"
)

// Error is the public message only, so that writing err.Error() into a
// response never leaks libvips internals. Logs get the cause through
// Unwrap, or through LogValue when the error is an slog attribute.
func (e *Error) Error() string { return e.Message }

// LogValue makes slog print status, code, message and the internal cause.
func (e *Error) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Int("status", e.Status), slog.String("code", e.Code), slog.String("message", e.Message)}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether retrying the same input can never succeed: every
// 4xx except timeouts and throttling. 5xx (internal trouble, timeouts, a
// cancelled context) may pass on another attempt.
func (e *Error) Permanent() bool {
	switch {
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests:
		return false
	case e.Status >= 400 && e.Status < 500:
		return true
	}
	return false
}

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badParam(name, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidParameter,
		Message: name + ": " + fmt.Sprintf(format, args...)}
}

func unprocessable(code, format string, args ...any) *Error {
	return errorf(http.StatusUnprocessableEntity, code, format, args...)
}

// AsError returns err as an *Error when it is (or wraps) one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
