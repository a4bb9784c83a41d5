package natsbus

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/nats-io/nats.go"
)

// errConnLost ends requests in flight when the connection drops: their
// replies cannot come, and waiting for the caller's deadline would only
// delay the API's 503 or the handler's retry. A publish cut off this way
// may still have been stored: a retry with the same Message.ID is
// deduplicated.
var errConnLost = fmt.Errorf("%w: connection lost", bus.ErrUnavailable)

// connState is a context that lives as long as the current connection.
type connState struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func (s *connState) up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil || s.ctx.Err() != nil {
		s.ctx, s.cancel = context.WithCancelCause(context.Background())
	}
}

func (s *connState) down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		s.cancel(errConnLost)
	}
}

func (s *connState) current() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctx
}

// ready fails fast while the connection is down, so that callers do not
// wait for a timeout.
func (b *Bus) ready(op string) error {
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("natsbus: %s: %w: connection %s", op, bus.ErrUnavailable, st)
	}
	return nil
}

// beginWrite is begin for a request that stores something: it also fails
// fast while an embedded server cannot store (see storeGuard).
func (b *Bus) beginWrite(ctx context.Context, op string) (context.Context, context.CancelFunc, error) {
	if err := b.guard.err(); err != nil {
		return nil, nil, fmt.Errorf("natsbus: %s: %w", op, err)
	}
	return b.begin(ctx, op)
}

// begin starts a request: it fails fast while disconnected and returns a
// ctx also cancelled if the connection drops before the reply.
func (b *Bus) begin(ctx context.Context, op string) (context.Context, context.CancelFunc, error) {
	if err := b.ready(op); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(b.conn.current(), func() { cancel(errConnLost) })
	return ctx, func() { stop(); cancel(nil) }, nil
}

// fail is wrap, reporting a request cut off by begin's ctx as such rather
// than as a cancellation by the caller.
func (b *Bus) fail(ctx context.Context, op string, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), errConnLost) {
		return fmt.Errorf("natsbus: %s: %w (%w)", op, errConnLost, err)
	}
	return wrap(op, err)
}
