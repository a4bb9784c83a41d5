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
//
// It moves the bus to st instead with --rebind-store, and on a bus no
// other process can reach (dev's embedded server, without a port): there
// the check would protect nothing, and would refuse `imgpipe dev` after a
// switch of --store or a wiped store directory.
func bindStore(ctx context.Context, b bus.Bus, st store.Store, cfg Config, ownBus bool, log *slog.Logger) error {
	mine := bus.StoreBinding{Store: st.Identity(), Where: st.Where(), By: cfg.Instance, At: time.Now().UTC()}
	bind := func(replace bool) (bus.StoreBinding, error) {
		// Retried as the bus's setup is: a failover just after it would
		// otherwise fail the start.
		return waitFor(ctx, log, "the bus to record the store", "the bus", func(ctx context.Context) (bus.StoreBinding, error) {
			return b.BindStore(ctx, mine, replace)
		})
	}
	bound, err := bind(false)
	switch {
	case err != nil:
		return err
	case bound.Store == mine.Store:
		// The first process records it; the others find it.
		if bound.By == mine.By && bound.At.Equal(mine.At) {
			log.Info("the bus's images are kept in this store (recorded on the bus)", "store", mine.Where, "identity", mine.Store)
		}
		return nil
	case !cfg.Store.Rebind && !ownBus:
		return fmt.Errorf("this process's store (%s, identity %s) is not the one the bus's images are kept in: %s (identity %s, recorded by %s at %s). "+
			"Give every process on this bus the same store (--store, IMGPIPE_STORE_URL or store.url). "+
			"If the images were moved to this store for good, stop the processes of the other store and start one process once with --rebind-store",
			mine.Where, mine.Store, bound.Where, bound.Store, bound.By, bound.At.Format(time.RFC3339))
	}
	if _, err := bind(true); err != nil {
		return err
	}
	why := "--rebind-store: drop it for later starts"
	if !cfg.Store.Rebind {
		why = "the embedded bus is this process's alone"
	}
	log.Warn("the bus's images are kept in this store from now on", "store", mine.Where, "identity", mine.Store,
		"was", bound.Where, "was_identity", bound.Store, "why", why)
	return nil
}
