// Package model holds the records that travel between roles and live in the
// store. It is plain Go with no dependencies so that every package (bus,
// store, transform, web) can share one vocabulary without importing each other.
package model

import (
	"strings"
	"time"
)

// Status is where an image is in the pipeline.
type Status string

const (
	StatusQueued     Status = "queued"
	StatusProcessing Status = "processing"
	StatusDone       Status = "done"
	StatusFailed     Status = "failed"
)

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusQueued, StatusProcessing, StatusDone, StatusFailed:
		return true
	}
	return false
}

// Final reports whether no further transition will happen.
func (s Status) Final() bool { return s == StatusDone || s == StatusFailed }

// Replaces reports whether a record with status next may overwrite one with
// status cur. Records arrive in any order (redeliveries, several workers,
// several save2db instances), so they only move forward: nothing replaces a
// final record but done, since a failure never undoes a success (a worker
// that timed out may fail an image another worker has finished).
func Replaces(next, cur Status) bool { return !cur.Final() || next == StatusDone }

// Supersedes is Replaces for whole records, which come in runs: an image
// failed for a cause a new try may cure, and uploaded again, is queued
// for a new run with one more Retries. Within a run, Replaces decides; a
// later run's records replace anything but a success (the failure, first
// of all), and an earlier run's, only with a success of their own.
func Supersedes(next, cur *Image) bool {
	switch {
	case next.Status == StatusDone:
		return true
	case next.Retries != cur.Retries:
		return next.Retries > cur.Retries && cur.Status != StatusDone
	}
	return Replaces(next.Status, cur.Status)
}

// Image is the record of one upload: what came in, what was asked for, and
// what came out. The id is derived from the original bytes and the spec, so
// the same upload twice lands on the same record. A failed image has Error,
// for people, and ErrorCode, its kind for programs: the engine's code,
// workers_stopped or transform_failed.
type Image struct {
	ID        string   `json:"id" bson:"_id"`
	Status    Status   `json:"status" bson:"status"`
	Error     string   `json:"error,omitempty" bson:"error,omitempty"`
	ErrorCode string   `json:"error_code,omitempty" bson:"error_code,omitempty"`
	Spec      string   `json:"spec" bson:"spec"` // canonical query string
	Original  Info     `json:"original" bson:"original"`
	Results   []Result `json:"results,omitempty" bson:"results,omitempty"`
	Attempts  int      `json:"attempts,omitempty" bson:"attempts,omitempty"`
	// Retries counts the times the image was queued again after a failure
	// a new try may cure (RetryableFailure), by uploading it again.
	Retries   int       `json:"retries,omitempty" bson:"retries,omitempty"`
	CreatedAt time.Time `json:"created_at" bson:"created_at"`
	UpdatedAt time.Time `json:"updated_at" bson:"updated_at"`
}

// Result returns the named variant, or false.
func (img *Image) Result(variant string) (Result, bool) {
	for _, r := range img.Results {
		if r.Variant == variant {
			return r, true
		}
	}
	return Result{}, false
}

// Info describes one encoded image, original or result.
type Info struct {
	Format string `json:"format" bson:"format"`
	Width  int    `json:"width" bson:"width"`
	Height int    `json:"height" bson:"height"`
	Size   int64  `json:"size" bson:"size"`
	SHA256 string `json:"sha256" bson:"sha256"`

	// Filled for originals: what a caller needs to know before asking for a
	// transform (orientation, colour, animation, camera).
	Orientation int    `json:"orientation,omitempty" bson:"orientation,omitempty"`
	ColorSpace  string `json:"color_space,omitempty" bson:"color_space,omitempty"`
	Alpha       bool   `json:"alpha,omitempty" bson:"alpha,omitempty"`
	Pages       int    `json:"pages,omitempty" bson:"pages,omitempty"` // frames of an animation; 0 or 1 for stills
	Animated    bool   `json:"animated,omitempty" bson:"animated,omitempty"`
	ICCProfile  string `json:"icc_profile,omitempty" bson:"icc_profile,omitempty"`
	EXIF        *EXIF  `json:"exif,omitempty" bson:"exif,omitempty"`
	Filename    string `json:"filename,omitempty" bson:"filename,omitempty"` // as the client named it; never trusted for type
}

// EXIF is the summary of camera metadata worth showing; the full block is
// stripped from results by default.
type EXIF struct {
	Make       string `json:"make,omitempty" bson:"make,omitempty"`
	Model      string `json:"model,omitempty" bson:"model,omitempty"`
	Lens       string `json:"lens,omitempty" bson:"lens,omitempty"`
	DateTaken  string `json:"date_taken,omitempty" bson:"date_taken,omitempty"`
	GPSPresent bool   `json:"gps_present" bson:"gps_present"`
}

// Result is one transformed output of an image. A plain upload has one
// result, the variant "default"; presets or several specs give more.
type Result struct {
	Variant string `json:"variant" bson:"variant"`
	Spec    string `json:"spec" bson:"spec"`
	Info    `bson:"inline"`
}

// DefaultVariant names the result of an upload that asked for one spec.
const DefaultVariant = "default"

// Keys under which blobs are kept, in staging and in the store alike.
func OriginalKey(id string) string        { return "originals/" + id }
func ResultKey(id, variant string) string { return "results/" + id + "/" + variant }

// KeyImage is the id of the image a blob key belongs to, as OriginalKey or
// ResultKey made it.
func KeyImage(key string) (string, bool) {
	if id, ok := strings.CutPrefix(key, "originals/"); ok && id != "" && !strings.Contains(id, "/") {
		return id, true
	}
	if rest, ok := strings.CutPrefix(key, "results/"); ok {
		if id, variant, ok := strings.Cut(rest, "/"); ok && id != "" && variant != "" {
			return id, true
		}
	}
	return "", false
}
