package roles

import (
	"context"
	"encoding/json"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
)

// Subjects on the save queue, after the queue prefix. The api publishes
// accepted records; the transformer publishes done or failed ones.
const (
	saveAccepted = "accepted"
	saveFinal    = "final"
)

// publishSave hands a record to save2db. The message id makes a repeated
// publish of the same state a no-op within the bus's duplicate window.
func publishSave(ctx context.Context, b bus.Bus, img *model.Image) error {
	kind := saveFinal
	if !img.Status.Final() {
		kind = saveAccepted
	}
	data, err := json.Marshal(img)
	if err != nil {
		return err
	}
	// The id names the outcome: a failed record and a later done one (a
	// redelivered attempt that succeeded) are two messages, not a retried
	// publish, and the stores keep the done one whatever their order.
	// So does the run: a failed image queued again fails or ends anew.
	id := "save." + kind + "." + img.ID + "." + runKey(img, string(img.Status))
	return b.Publish(ctx, bus.Message{Queue: bus.Save, Subject: kind + "." + img.ID, ID: id, Data: data})
}

// PublishAccepted is how the api hands a new record to save2db.
func PublishAccepted(ctx context.Context, b bus.Bus, img *model.Image) error {
	return publishSave(ctx, b, img)
}
