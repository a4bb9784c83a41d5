package natsbus

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus"
)

func TestRetryDelay(t *testing.T) {
	r := bus.Retry{MaxDeliver: 5, Backoff: []time.Duration{time.Second, 5 * time.Second}}
	for attempt, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 5 * time.Second, 9: 5 * time.Second} {
		if got := retryDelay(r, attempt); got != want {
			t.Errorf("attempt %d: %s, want %s", attempt, got, want)
		}
	}
	if got := retryDelay(bus.Retry{MaxDeliver: 3}, 1); got != 0 {
		t.Errorf("no backoff: %s, want 0", got)
	}
}

func TestNames(t *testing.T) {
	n := names{"imgpipe"}
	for got, want := range map[string]string{
		n.stream(bus.Transform):                    "IMGPIPE_TRANSFORM",
		n.subject(bus.Save, "done.ab12"):           "imgpipe.save.done.ab12",
		n.wildcard(bus.Activity):                   "imgpipe.activity.>",
		n.trim(bus.Save, "imgpipe.save.done.ab12"): "done.ab12",
		n.statusBucket():                           "imgpipe_status",
		n.stream(stageQueue):                       "IMGPIPE_STAGE",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}

// TestOpenEmbeddedOwnsServer: the server started by OpenEmbedded goes
// down with the Bus.
func TestOpenEmbeddedOwnsServer(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Replicas = 3 // forced to 1 on one embedded node
	b, err := OpenEmbedded(t.Context(), cfg, EmbeddedOptions{Dir: t.TempDir()}, "owner", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b.server.Running() {
		t.Fatal("embedded server still running after Close")
	}
}
