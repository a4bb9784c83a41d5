package roles

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nuid"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
)

// activity publishes the events of one role. Publishing is asynchronous: an
// activity line must never slow the image it describes. The bus flushes
// pending publishes when the process drains.
type activity struct {
	deps Deps
	role string
}

// emit records that this role did event to image id. attempt makes the event
// id stable across redeliveries of the same attempt (the logger keeps one);
// attempt 0 means the event is unique each time (a duplicate upload).
func (a activity) emit(id, event string, attempt int, detail string) {
	ev := model.Event{
		ImageID:  id,
		Time:     time.Now().UTC(),
		Role:     a.role,
		Instance: a.deps.Instance,
		Event:    event,
		Detail:   detail,
	}
	if attempt > 0 {
		ev.ID = fmt.Sprintf("%s.%s.%d", id, event, attempt)
	} else {
		ev.ID = id + "." + event + "." + nuid.Next()
	}
	data, _ := json.Marshal(ev) // plain struct: cannot fail
	err := a.deps.Bus.PublishAsync(bus.Message{Queue: bus.Activity, Subject: a.role + "." + id, ID: ev.ID, Data: data})
	if err != nil {
		a.deps.Log.Warn("activity not published", "image", id, "event", event, "err", err)
	}
}
