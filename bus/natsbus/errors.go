package natsbus

import (
	"context"
	"errors"
	"fmt"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// unavailable lists the errors that mean "the bus cannot be reached right
// now" rather than "this request is wrong": the API answers them with 503
// and handlers retry them.
var unavailable = []error{
	nats.ErrConnectionClosed,
	nats.ErrConnectionDraining,
	nats.ErrConnectionReconnecting,
	nats.ErrDisconnected,
	nats.ErrNoServers,
	nats.ErrNoResponders,
	nats.ErrReconnectBufExceeded,
	nats.ErrStaleConnection,
	nats.ErrTimeout,
	jetstream.ErrNoStreamResponse,
	jetstream.ErrAsyncPublishTimeout,
	jetstream.ErrTooManyStalledMsgs,
	jetstream.ErrJetStreamPublisherClosed,
	context.DeadlineExceeded,
}

func isUnavailable(err error) bool {
	for _, u := range unavailable {
		if errors.Is(err, u) {
			return true
		}
	}
	// JetStream answers 503 while it has no leader or quorum, and when a
	// stream's store fails a write (a full disk). Its 500s are refusals
	// of the request (an invalid config, a purge it cannot make), which a
	// retry would not mend.
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == 503
}

// ErrMisconfigured marks a setup the servers refuse for what they are, not
// for how they are doing: waiting for them would not help.
var ErrMisconfigured = errors.New("natsbus: the servers cannot hold this configuration")

// misconfigured recognises JetStream's refusals of the configuration
// itself: replicas on a server that is not clustered (nats-server's
// JSStreamReplicasNotSupportedErr). "JetStream not enabled" is not one: a
// server whose store failed turns JetStream off until it is restarted.
func misconfigured(err error) bool {
	const replicasNotSupported jetstream.ErrorCode = 10074
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == replicasNotSupported
}

// wrap names the operation and adds bus.ErrUnavailable where it applies.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if isUnavailable(err) && !errors.Is(err, bus.ErrUnavailable) {
		return fmt.Errorf("natsbus: %s: %w: %w", op, bus.ErrUnavailable, err)
	}
	return fmt.Errorf("natsbus: %s: %w", op, err)
}
