package model

import "time"

// Event is one line of activity: which role, on which instance, did what to
// which image. The logger keeps every event; the API serves them per image
// and as a live feed.
type Event struct {
	// ID is unique per event and stable across redeliveries, so that storing
	// an event twice keeps one copy.
	ID       string    `json:"id" bson:"_id"`
	ImageID  string    `json:"image_id" bson:"image_id"`
	Time     time.Time `json:"time" bson:"time"`
	Role     string    `json:"role" bson:"role"`
	Instance string    `json:"instance" bson:"instance"`
	Event    string    `json:"event" bson:"event"`
	Detail   string    `json:"detail,omitempty" bson:"detail,omitempty"`
}

// Event names, one per step of the pipeline.
const (
	EventAccepted         = "accepted"          // api: upload staged and queued
	EventDuplicate        = "duplicate"         // api: same bytes and spec as an existing image
	EventRequeued         = "requeued"          // api: a failed image uploaded again, queued for a new run
	EventTransformStarted = "transform.started" // transform: picked up
	EventTransformDone    = "transform.done"    // transform: results staged
	EventTransformRetry   = "transform.retry"   // transform: attempt failed, will retry
	EventTransformFailed  = "transform.failed"  // transform: gave up
	EventSaved            = "saved"             // save2db: original and results persisted
	EventRecorded         = "recorded"          // save2db: queued record persisted
)
