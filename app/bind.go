package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/store"
)

// bindStore checks that st is the store the bus's images are kept in, and
// records it as such if the bus has none yet (its first process). A
// process given another store is refused before it takes any work: it
// would move images off the shared queues into a store the other
// processes never read, and they would answer 404 for them.
func bindStore(ctx context.Context, b bus.Bus, st store.Store, cfg Config, log *slog.Logger) error {
	mine := bus.StoreBinding{Store: st.Identity(), Where: st.Where(), By: cfg.Instance, At: time.Now().UTC()}
	bound, err := b.BindStore(ctx, mine, cfg.Store.Rebind)
	if err != nil {
		return fmt.Errorf("recording the store on the bus: %w", err)
	}
	switch {
	case bound.Store != mine.Store:
		return fmt.Errorf("this process's store (%s, identity %s) is not the one the bus's images are kept in: %s (identity %s, recorded by %s at %s). "+
			"Give every process on this bus the same store (--store, IMGPIPE_STORE_URL or store.url). "+
			"If the images were moved to this store for good, start one process once with --rebind-store",
			mine.Where, mine.Store, bound.Where, bound.Store, bound.By, bound.At.Format(time.RFC3339))
	case cfg.Store.Rebind:
		log.Warn("the bus's images are kept in this store from now on (--rebind-store); drop the flag for later starts",
			"store", mine.Where, "identity", mine.Store)
	case bound.By == mine.By && bound.At.Equal(mine.At):
		log.Info("the bus's images are kept in this store (recorded on the bus)", "store", mine.Where, "identity", mine.Store)
	}
	return nil
}
