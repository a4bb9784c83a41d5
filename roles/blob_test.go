package roles

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/model"
)

// TestResultReadAsItsRecordNamesIt: a process that staged one render of a
// result holds it in its cache; another process (another build, say)
// renders the image again, otherwise, and its record names the new bytes.
// Reading the result for that record gets the new bytes, not the cached.
func TestResultReadAsItsRecordNamesIt(t *testing.T) {
	ns, err := natsbus.StartEmbedded(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	connect := func() bus.Bus {
		cfg := natsbus.DefaultConfig()
		cfg.URL, cfg.StageCacheBytes = "", 1<<20 // the cache on, whatever the default
		b, err := natsbus.Connect(t.Context(), cfg, ns, "test", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	first, second := connect(), connect()
	key := model.ResultKey("0123456789abcdef0123456789abcdef", "default")
	older, newer := []byte("the first render"), []byte("a render by another build")
	if err := first.Stage().Put(t.Context(), key, older); err != nil {
		t.Fatal(err)
	}
	if err := second.Stage().Put(t.Context(), key, newer); err != nil {
		t.Fatal(err)
	}
	got, err := stagedAs(t.Context(), first, key, sha256Hex(newer))
	if err != nil || !bytes.Equal(got, newer) {
		t.Fatalf("read for the new record: %q, %v; want %q", got, err, newer)
	}
	// Read again from the stage, the new bytes are what this process
	// holds from now on.
	if got, err := first.Stage().Get(t.Context(), key); err != nil || !bytes.Equal(got, newer) {
		t.Errorf("then: %q, %v; want %q", got, err, newer)
	}

	// The other process deletes it (save2db, once stored) and the image
	// is rendered yet again: the copy found stale is let go, not read
	// again and again.
	if err := second.Stage().Delete(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	if got, err := stagedAs(t.Context(), first, key, sha256Hex([]byte("a third render"))); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("read for a render no longer staged: %q, %v; want not found", got, err)
	}
	if got, err := first.Stage().Get(t.Context(), key); !errors.Is(err, bus.ErrNotFound) {
		t.Errorf("then: %q, %v; want not found", got, err)
	}
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
