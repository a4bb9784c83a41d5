package roles

import (
	"log/slog"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/transform"
)

// Deps is what roles share in one process: the bus, the store, the engine
// and who this process is. Nothing in it holds state another instance needs.
type Deps struct {
	Bus      bus.Bus
	Store    store.Store
	Engine   *transform.Engine
	Instance string
	Log      *slog.Logger
	Metrics  *Metrics
	// Activity publishes every role's events (see Activity).
	Activity *Activity
	// Room, when set, says whether there is room to take uploads, pending
	// bytes of them on their way: nil, or a *RoomError (see API.CheckRoom).
	Room func(pending int64) error
}
