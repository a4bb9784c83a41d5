package roles

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/internal/natstest"
)

// TestWorkerConsumers reads the worker roles' durables from the server: a
// delivery whose worker died comes back after redeliverAfter for every
// role, and transform's idle workers each wait with an ask of their own,
// for one delivery: none is fetched ahead of them.
func TestWorkerConsumers(t *testing.T) {
	ns, err := natsbus.StartEmbedded(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	d := Deps{Bus: connectTo(t, ns), Log: slog.New(slog.DiscardHandler)}
	const workers = 3
	for _, s := range []Service{NewTransformer(d, workers), NewSaver(d, workers), NewLogger(d, workers)} {
		if err := s.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.Stop(ctx)
		})
	}
	js := natstest.JetStream(t, "", nats.InProcessServer(ns))
	for stream, durable := range map[string]string{"IMGPIPE_TRANSFORM": "transform", "IMGPIPE_SAVE": "save2db", "IMGPIPE_ACTIVITY": "logger"} {
		cons, err := js.Consumer(t.Context(), stream, durable)
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.AckWait != redeliverAfter {
			t.Errorf("%s: ack wait %s, want %s", durable, info.Config.AckWait, redeliverAfter)
		}
	}
	cons, err := js.Consumer(t.Context(), "IMGPIPE_TRANSFORM", "transform")
	if err != nil {
		t.Fatal(err)
	}
	// The asks reach the server as the workers start: wait for all.
	deadline := time.Now().Add(10 * time.Second)
	for {
		waiting := -1
		info, err := cons.Info(t.Context())
		if err == nil {
			waiting = info.NumWaiting
		}
		if waiting == workers {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("transform: %d asks waiting (err %v), want one per idle worker: %d", waiting, err, workers)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
