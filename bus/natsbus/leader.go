package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// leaderGetTimeout bounds a leader read whose caller set no deadline.
const leaderGetTimeout = 5 * time.Second

// leaderGet reads the last message on subject of stream through the
// stream's leader, with the JetStream API's message get. NATS promises
// read-after-write only there: direct gets, the cheap reads, may be
// answered by any replica, which can lag behind. The client's stream
// handle cannot be asked for this on a stream that allows direct gets.
func (b *Bus) leaderGet(ctx context.Context, stream, subject string) (*jetstream.RawStreamMsg, error) {
	// A request no leader hears gets no answer at all: bounded, as the
	// client's own API calls are, whatever the caller's context.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, leaderGetTimeout)
		defer cancel()
	}
	req, err := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{subject})
	if err != nil {
		return nil, err
	}
	resp, err := b.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, err
	}
	var r struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject string `json:"subject"`
			Seq     uint64 `json:"seq"`
			Header  []byte `json:"hdrs"` // base64 in JSON, as []byte decodes
			Data    []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, fmt.Errorf("message get reply: %w", err)
	}
	switch {
	case r.Error != nil && r.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, jetstream.ErrMsgNotFound
	case r.Error != nil:
		// As an APIError: a 503 (no leader yet) is then "unavailable".
		return nil, fmt.Errorf("message get: %w", r.Error)
	case r.Message == nil:
		return nil, errors.New("message get: empty reply")
	}
	msg := &jetstream.RawStreamMsg{Subject: r.Message.Subject, Sequence: r.Message.Seq, Data: r.Message.Data}
	if len(r.Message.Header) > 0 {
		if msg.Header, err = nats.DecodeHeadersMsg(r.Message.Header); err != nil {
			return nil, fmt.Errorf("message get: headers: %w", err)
		}
	}
	return msg, nil
}
