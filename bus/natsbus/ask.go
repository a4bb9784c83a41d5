package natsbus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jsMsg is what a consumer uses of a delivered message: askedMsg, a
// message of the consumer's own asks, has it.
type jsMsg interface {
	Subject() string
	Data() []byte
	Metadata() (*jetstream.MsgMetadata, error)
	Ack() error
	Nak() error
	NakWithDelay(time.Duration) error
	TermWithReason(string) error
	InProgress() error
}

// Consumers ask on subscriptions of their own rather than through
// nats.go's Fetch or Next, for the end of an ask at Drain. Fetch and Next,
// their context cancelled, unsubscribe and drop whatever the server had
// already sent to the ask: a message on its way was lost until AckWait
// (2 runs in 150 of TestDrainHandsBackPrefetched, and every run of
// TestDrainHandsBackInFlightNoPrefetch). Here Drain ends the ask with the
// subscription's Drain and a flush: the server sends nothing more once it
// has the unsubscribe, and everything it sent before has arrived when the
// flush returns, to be handed back with the rest of what was fetched.

// ask asks for n messages on the consumer and gives each that comes to
// deliver until the ask is complete, the server ends it, pullExpiry
// passes, or fetching ends (Drain). An ask can be lost (sent to a
// replicated consumer whose leader is not elected yet, or held by a
// leader that then goes away), and leaves the consumer deaf until it
// expires.
func (c *consumer) ask(p *pull, n int, deliver func(jsMsg)) (got int, err error) {
	nc := c.b.nc
	// Room for the whole batch and the status that may end it: a full
	// channel would make the client drop a message (a slow consumer).
	ch := make(chan *nats.Msg, n+4)
	sub, err := nc.ChanSubscribe(nc.NewInbox(), ch)
	if err != nil {
		return 0, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	req, _ := json.Marshal(struct {
		Batch   int           `json:"batch"`
		Expires time.Duration `json:"expires"`
	}{n, pullExpiry})
	// The bus's JetStream has the default API prefix (jetstream.New
	// without a domain), as its other requests do.
	subject := fmt.Sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", c.stream, c.cfg.Durable)
	if err := nc.PublishRequest(subject, sub.Subject, req); err != nil {
		return 0, err
	}
	// The server answers an expired ask with a 408; a lost one, never. An
	// ask that was held up (in the client's reconnect buffer, say) may
	// still bring a message as it is given up: it is ended as at Drain.
	lost := time.NewTimer(pullExpiry + time.Second)
	defer lost.Stop()
	for got < n {
		select {
		case m := <-ch:
			if isUserMsg(m) {
				deliver(askedMsg{m})
				got++
			} else if done, err := askStatus(m); done {
				return got, err
			}
		case <-lost.C:
			return got + c.endAsk(sub, ch, deliver), nil
		case <-p.fetching.Done():
			return got + c.endAsk(sub, ch, deliver), nil
		}
	}
	return got, nil
}

// endAsk ends an open ask without losing what it brought: see above. What
// came is delivered like the rest, to be handed back (handle, while
// stopping). Without a connection, or when the flush goes unanswered (the
// server gone meanwhile: a flush waited its whole timeout there, and held
// Close), what did not arrive is left to AckWait, as a stopped pull
// leaves it.
func (c *consumer) endAsk(sub *nats.Subscription, ch chan *nats.Msg, deliver func(jsMsg)) (got int) {
	if err := sub.Drain(); err == nil && c.b.nc.IsConnected() {
		_ = c.b.nc.FlushTimeout(endAskWait)
	}
	for {
		select {
		case m := <-ch:
			if isUserMsg(m) {
				deliver(askedMsg{m})
				got++
			}
		default:
			return got
		}
	}
}

// endAskWait bounds the flush that ends an ask: a round trip to the
// server, milliseconds when it is there.
const endAskWait = 500 * time.Millisecond

// isUserMsg tells a message of the stream from a status of the ask.
func isUserMsg(m *nats.Msg) bool {
	return len(m.Data) > 0 || m.Header.Get("Status") == ""
}

// askStatus reads a status message of an ask: done when it ends the ask,
// with the error it means, if any. As nats.go's Fetch reads them: 404 (no
// messages) and 408 (expired) end it quietly; 409s name why the server
// ended it; 100 is a heartbeat, which these asks do not ask for.
func askStatus(m *nats.Msg) (done bool, err error) {
	status, descr := m.Header.Get("Status"), m.Header.Get("Description")
	lower := strings.ToLower(descr)
	switch {
	case status == "100":
		return false, nil
	case status == "404", status == "408":
		return true, nil
	case status == "503":
		return true, nats.ErrNoResponders
	case status == "409" && strings.Contains(lower, "leadership change"):
		return true, jetstream.ErrConsumerLeadershipChanged
	case status == "409" && strings.Contains(lower, "server shutdown"):
		return true, jetstream.ErrServerShutdown
	case status == "409" && strings.Contains(lower, "consumer deleted"):
		return true, jetstream.ErrConsumerDeleted
	}
	return true, fmt.Errorf("natsbus: ask ended by the server: %s %s", status, descr)
}

// askedMsg is a message of the consumer's own asks (the fetcher's and
// NoPrefetch workers'), with the jetstream.Msg methods a consumer uses,
// over nats.go's JetStream helpers of nats.Msg.
type askedMsg struct{ m *nats.Msg }

func (a askedMsg) Subject() string                    { return a.m.Subject }
func (a askedMsg) Data() []byte                       { return a.m.Data }
func (a askedMsg) Ack() error                         { return a.m.Ack() }
func (a askedMsg) Nak() error                         { return a.m.Nak() }
func (a askedMsg) NakWithDelay(d time.Duration) error { return a.m.NakWithDelay(d) }
func (a askedMsg) InProgress() error                  { return a.m.InProgress() }

// TermWithReason sends the term with its reason, as jetstream.Msg does:
// nats.Msg's Term has no reason.
func (a askedMsg) TermWithReason(reason string) error {
	if a.m.Reply == "" {
		return errors.New("natsbus: message has no reply subject to term")
	}
	return a.m.Respond([]byte("+TERM " + reason))
}

func (a askedMsg) Metadata() (*jetstream.MsgMetadata, error) {
	md, err := a.m.Metadata()
	if err != nil {
		return nil, err
	}
	out := &jetstream.MsgMetadata{
		NumDelivered: md.NumDelivered, NumPending: md.NumPending, Timestamp: md.Timestamp,
		Stream: md.Stream, Consumer: md.Consumer, Domain: md.Domain,
	}
	out.Sequence.Stream, out.Sequence.Consumer = md.Sequence.Stream, md.Sequence.Consumer
	return out, nil
}
