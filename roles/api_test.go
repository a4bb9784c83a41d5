package roles

import (
	"context"
	"errors"
	"testing"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/store/local"
)

// errDirectGet is the kind of error the NATS client makes of a direct get
// the server answers with a status other than "not found": plain text
// ("nats: " and the status's description), which no errors.Is knows. It
// cannot be provoked on demand, so a bus that answers reads with it stands
// in; everything else is real.
var errDirectGet = errors.New("nats: Request Timeout")

type refusingReads struct {
	bus.Bus
	err error
}

func (b refusingReads) Status() bus.StatusTable { return refusingStatus{b.Bus.Status(), b.err} }
func (b refusingReads) Stage() bus.Stage        { return refusingStage{b.Bus.Stage(), b.err} }

type refusingStatus struct {
	bus.StatusTable
	err error
}

func (s refusingStatus) Get(context.Context, string) (*model.Image, error) { return nil, s.err }

type refusingStage struct {
	bus.Stage
	err error
}

func (s refusingStage) Get(context.Context, string) ([]byte, error)       { return nil, s.err }
func (s refusingStage) GetLatest(context.Context, string) ([]byte, error) { return nil, s.err }

// A read the bus fails, for a reason it does not name, and the store
// cannot answer, is an outage (503), not an internal error (500), and not
// a 404 either: the image may well exist. A bus that says "not found" still
// gives a 404.
func TestAPIReadsTheBusCannotAnswerAreUnavailable(t *testing.T) {
	st, err := local.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	real := realBus(t)
	const id = "0123456789abcdef0123456789abcdef"
	key := model.ResultKey(id, "default")

	api := NewAPI(Deps{Bus: refusingReads{real, errDirectGet}, Store: st})
	if _, err := api.Lookup(t.Context(), id); !errors.Is(err, bus.ErrUnavailable) || !errors.Is(err, errDirectGet) {
		t.Errorf("Lookup: %v, want bus.ErrUnavailable with its cause", err)
	}
	if _, err := api.Blob(t.Context(), key, ""); !errors.Is(err, bus.ErrUnavailable) || !errors.Is(err, errDirectGet) {
		t.Errorf("Blob: %v, want bus.ErrUnavailable with its cause", err)
	}

	// A client that hung up mid-read is not an outage (the web layer
	// answers it 499).
	api = NewAPI(Deps{Bus: refusingReads{real, context.Canceled}, Store: st})
	if _, err := api.Blob(t.Context(), key, ""); !errors.Is(err, context.Canceled) || errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("Blob, cancelled: %v, want context.Canceled alone", err)
	}

	api = NewAPI(Deps{Bus: real, Store: st})
	if _, err := api.Lookup(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Lookup of an unknown id: %v, want store.ErrNotFound", err)
	}
	if _, err := api.Blob(t.Context(), key, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Blob of an unknown key: %v, want store.ErrNotFound", err)
	}
}
