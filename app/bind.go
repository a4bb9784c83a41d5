package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/store/mongo"
)

// refuseFreshStore refuses, before the store is opened, a MongoDB database
// imgpipe never opened while the bus's images are kept in another store: a
// mistyped name. Opened, it would be created (its indexes, its identity)
// only for bindStore to refuse it, leaving a database to drop. The rest is
// bindStore's: a database with an identity is compared there, and a new
// one is right for a bus with no store yet, or with --rebind-store naming
// the bus's store. It is a courtesy, so what cannot be read within
// peekFor (the bus, the server) is left to the open and to bindStore.
func refuseFreshStore(ctx context.Context, b bus.Bus, cfg Config, ownBus bool) error {
	if ownBus {
		return nil
	}
	if loc, err := store.ParseURL(cfg.Store.URL); err != nil || loc.Kind != store.KindMongo {
		return nil
	}
	// Bounded: a request no stream leader hears gets no answer, and the
	// start's own deadline is minutes away.
	ctx, cancel := context.WithTimeout(ctx, peekFor)
	defer cancel()
	bound, err := b.BoundStore(ctx)
	if err != nil || cfg.Store.Rebind == bound.Store {
		return nil
	}
	id, where, err := mongo.Peek(ctx, cfg.Store.URL)
	if err != nil || id != "" {
		return nil
	}
	stale := ""
	if cfg.Store.Rebind != "" {
		stale = fmt.Sprintf(" (--rebind-store, store.rebind, names %s, which is not the bus's store: nothing moved)", cfg.Store.Rebind)
	}
	return fmt.Errorf("this process's store (%s) has no imgpipe identity (imgpipe never opened it), so it is not the one the bus's images are kept in: %s; nothing was created in it. %s%s",
		where, described(bound), sameStore(bound), stale)
}

// described names a bus's store in a refusal.
func described(sb bus.StoreBinding) string {
	return fmt.Sprintf("%s (identity %s, recorded by %s at %s)", sb.Where, sb.Store, sb.By, sb.At.Format(time.RFC3339))
}

// sameStore ends the refusal of another store: what to do about it.
func sameStore(bound bus.StoreBinding) string {
	return "Give every process on this bus the same store (--store, IMGPIPE_STORE_URL or store.url). " +
		"If the images were moved to this store for good, start this process with --rebind-store=" + bound.Store
}

// peekFor bounds refuseFreshStore.
const peekFor = 10 * time.Second

// bindStore checks that st is the store the bus's images are kept in, and
// records it as such if the bus has none yet (its first process). A
// process given another store is refused before it takes any work: it
// would move images off the shared queues into a store the other
// processes never read, and they would answer 404 for them.
//
// It moves the bus to st instead when told which store st replaces
// (--rebind-store), and on a bus no other process can reach (dev's
// embedded server, without a port): there the check would protect
// nothing, and would refuse `imgpipe dev` after a switch of --store or a
// wiped store directory. It returns the binding it checked or made.
func bindStore(ctx context.Context, b bus.Bus, st store.Store, cfg Config, ownBus bool, log *slog.Logger) (bus.StoreBinding, error) {
	mine := bus.StoreBinding{Store: st.Identity(), Where: st.Where(), By: cfg.Instance, At: time.Now().UTC()}
	bind := func(replace bool) (bus.StoreBinding, error) {
		// Retried as the bus's setup is: a failover just after it would
		// otherwise fail the start.
		return waitFor(ctx, log, "the bus to record the store", "the bus", func(ctx context.Context) (bus.StoreBinding, error) {
			return b.BindStore(ctx, mine, replace)
		})
	}
	bound, err := bind(false)
	if err != nil {
		return mine, err
	}
	replaces := cfg.Store.Rebind
	switch {
	case bound.Store == mine.Store && replaces != bound.Store:
		switch {
		case replaces != "":
			log.Info("the bus's images are kept in this store already: --rebind-store (store.rebind) can go", "store", mine.Where, "identity", mine.Store)
		case bound.By == mine.By && bound.At.Equal(mine.At):
			// The first process records it; the others find it.
			log.Info("the bus's images are kept in this store (recorded on the bus)", "store", mine.Where, "identity", mine.Store)
		}
		return mine, nil
	case ownBus:
		replaces = bound.Store
	case replaces == "":
		return mine, fmt.Errorf("this process's store (%s, identity %s) is not the one the bus's images are kept in: %s. %s",
			mine.Where, mine.Store, described(bound), sameStore(bound))
	case replaces != bound.Store:
		return mine, fmt.Errorf("--rebind-store (store.rebind) names store %s, but the bus's images are kept in %s: nothing moved, and this process's store (%s, identity %s) is not that one",
			replaces, described(bound), mine.Where, mine.Store)
	}
	if mine.Store == bound.Store {
		// A copy of the bus's store (a restored dump keeps the identity):
		// it goes its own way, so that the processes of the original,
		// still running, see the move and stop.
		id, err := st.Reidentify(ctx)
		if err != nil {
			return mine, fmt.Errorf("giving the new store an identity of its own: %w", err)
		}
		log.Warn("this store had the identity of the one it replaces (a copy): it has one of its own now", "identity", id, "was", mine.Store)
		mine.Store = id
	}
	if _, err := bind(true); err != nil {
		return mine, err
	}
	why := "--rebind-store (store.rebind); it does nothing from now on"
	if ownBus {
		why = "the embedded bus is this process's alone"
	}
	log.Warn("the bus's images are kept in this store from now on; its status table was emptied", "store", mine.Where, "identity", mine.Store,
		"was", bound.Where, "was_identity", bound.Store, "why", why)
	return mine, nil
}

// bindingCheckEvery is how often a running process reads the binding.
var bindingCheckEvery = 10 * time.Second

// bindingCheck stops a running process once the bus's images are kept in
// another store (--rebind-store given to a process of another): from then
// on every image it took would go where no one reads. Its roles drain and
// the process ends with the reason; restarted as it is, it is refused at
// start. Each read also records the binding again if the bus lost it.
type bindingCheck struct {
	b    bus.Bus
	mine bus.StoreBinding
	log  *slog.Logger

	failed     chan error
	stop, done chan struct{}
}

func newBindingCheck(b bus.Bus, mine bus.StoreBinding, log *slog.Logger) *bindingCheck {
	return &bindingCheck{b: b, mine: mine, log: log, failed: make(chan error, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (c *bindingCheck) Name() string         { return "store binding" }
func (c *bindingCheck) Failed() <-chan error { return c.failed }

func (c *bindingCheck) Start(context.Context) error {
	go c.loop()
	return nil
}

func (c *bindingCheck) Stop(context.Context) error {
	close(c.stop)
	<-c.done
	return nil
}

func (c *bindingCheck) loop() {
	defer close(c.done)
	tick := time.NewTicker(bindingCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		// Ping first: it makes again the streams a server lost, the
		// record's bucket among them (and records it again), before a
		// process of another store starting meanwhile could claim the bus.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.b.Ping(ctx)
		var got bus.StoreBinding
		if err == nil {
			got, err = c.b.BindStore(ctx, c.mine, false)
		}
		cancel()
		if err != nil {
			// The bus away: /readyz says so; the next read decides.
			c.log.Debug("store binding not read", "err", err)
			continue
		}
		if got.Store != c.mine.Store {
			c.failed <- fmt.Errorf("the bus's images are now kept in another store: %s, not this process's %s (identity %s)",
				described(got), c.mine.Where, c.mine.Store)
			return
		}
	}
}
