package natsbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imgpipe/imgpipe/bus"
)

// Close drains consumers still running (handlers get until the close
// timeout, then their context is cancelled), flushes async publishes,
// drains the connection and, for OpenEmbedded, shuts the server down. It is safe to
// call more than once.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.close() })
	return b.closeErr
}

func (b *Bus) close() error {
	b.guard.release()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	// A server that has just gone may not be noticed yet, and the drains
	// below would then wait out the whole timeout: a round trip tells.
	if b.nc.IsConnected() && b.nc.FlushTimeout(500*time.Millisecond) != nil {
		b.nc.Close()
	}
	var errs []error
	b.mu.Lock()
	b.closing = true
	live := make([]*consumer, 0, len(b.consumers))
	for c := range b.consumers {
		live = append(live, c)
	}
	b.mu.Unlock()
	for _, c := range live {
		if err := c.Drain(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// After the consumers: their last handlers may have published.
	if b.nc.IsConnected() {
		if err := b.Flush(ctx); err != nil {
			errs = append(errs, err)
		}
	}

	// Drain sends pending acks before closing; it refuses a connection
	// that is down, which only needs closing.
	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
	}
	select {
	case <-b.closedCh:
	case <-ctx.Done():
		b.nc.Close()
	}

	if b.server != nil {
		b.server.Shutdown()
	}
	return errors.Join(errs...)
}

func (b *Bus) track(c *consumer) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return fmt.Errorf("natsbus: consume: %w: bus closed", bus.ErrUnavailable)
	}
	b.consumers[c] = struct{}{}
	return nil
}

func (b *Bus) forget(c *consumer) {
	b.mu.Lock()
	delete(b.consumers, c)
	b.mu.Unlock()
}
