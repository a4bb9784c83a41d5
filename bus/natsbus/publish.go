package natsbus

import (
	"context"
	"fmt"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// toMsg maps a bus.Message onto <prefix>.<queue>.<Subject>; ID becomes the
// Nats-Msg-Id header, which the stream deduplicates within dupWindow.
func (b *Bus) toMsg(m bus.Message) (*nats.Msg, []jetstream.PublishOpt, error) {
	if err := knownQueue(m.Queue); err != nil {
		return nil, nil, err
	}
	if err := checkSubject(m.Subject, false); err != nil {
		return nil, nil, err
	}
	msg := &nats.Msg{Subject: b.names.subject(m.Queue, m.Subject), Data: m.Data}
	var opts []jetstream.PublishOpt
	if m.ID != "" {
		opts = append(opts, jetstream.WithMsgID(m.ID))
	}
	return msg, opts, nil
}

// Publish returns after the stream has stored the message (its PubAck).
// It fails fast with bus.ErrUnavailable while disconnected, or when the
// connection drops before the PubAck, rather than waiting for ctx.
func (b *Bus) Publish(ctx context.Context, m bus.Message) error {
	msg, opts, err := b.toMsg(m)
	if err != nil {
		return err
	}
	op := "publish " + msg.Subject
	ctx, done, err := b.beginWrite(ctx, op)
	if err != nil {
		return err
	}
	defer done()
	_, err = b.js.PublishMsg(ctx, msg, opts...)
	return b.fail(ctx, op, err)
}

// PublishAsync sends without waiting for the PubAck. At most
// AsyncMaxPending may await their ack; beyond that it waits up to 200ms for
// room and then fails with bus.ErrUnavailable. A failure after it returned
// is logged and counted (AsyncErrors), and sent on the outcome channel,
// which gets the PubAck's verdict or the async timeout's. Unlike Publish it
// rides out a short disconnection in the client's reconnect buffer.
func (b *Bus) PublishAsync(m bus.Message) (<-chan error, error) {
	msg, opts, err := b.toMsg(m)
	if err != nil {
		return nil, err
	}
	op := "publish async " + msg.Subject
	if b.nc.IsClosed() {
		// Checked here: the client reports it as an unwrapped string.
		return nil, fmt.Errorf("natsbus: %s: %w: %w", op, bus.ErrUnavailable, nats.ErrConnectionClosed)
	}
	if err := b.guard.err(); err != nil {
		return nil, fmt.Errorf("natsbus: %s: %w", op, err)
	}
	fut, err := b.js.PublishMsgAsync(msg, opts...)
	if err != nil {
		return nil, wrap(op, err)
	}
	// One goroutine per publish: async publishes are activity batches, a
	// few hundred a second at most, and AsyncMaxPending bounds them.
	outcome := make(chan error, 1)
	go func() {
		select {
		case <-fut.Ok():
			outcome <- nil
		case err := <-fut.Err():
			outcome <- wrap(op, err)
		}
	}()
	return outcome, nil
}

// Flush waits until every async publish is acknowledged or has failed.
func (b *Bus) Flush(ctx context.Context) error {
	select {
	case <-b.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return wrap("flush", fmt.Errorf("%d publishes still pending: %w", b.js.PublishAsyncPending(), ctx.Err()))
	}
}

func (b *Bus) asyncFailed(_ jetstream.JetStream, msg *nats.Msg, err error) {
	b.asyncErrs.Add(1)
	if ok, suppressed := b.asyncLog.Allow(); ok {
		b.log.Warn("async publish failed", "subject", msg.Subject,
			"msg_id", msg.Header.Get(jetstream.MsgIDHeader), "err", err,
			"suppressed", suppressed, "total_failed", b.asyncErrs.Load())
	}
}
