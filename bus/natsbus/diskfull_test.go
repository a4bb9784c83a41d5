package natsbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/internal/diskfull"
	"github.com/imgpipe/imgpipe/model"
)

// TestFullDiskHeals fills the disk under an embedded server for real: its
// streams stop storing. Ping and writes then say so at once, as
// unavailable, and once there is room again the bus heals by itself, with
// everything it had accepted intact.
func TestFullDiskHeals(t *testing.T) {
	dir := diskfull.Tmpfs(t, 48<<20)
	// SyncAlways, to see the restart keep the server's options.
	e, err := natsbus.StartEmbeddedServer(natsbus.EmbeddedOptions{Dir: filepath.Join(dir, "nats"), SyncAlways: true}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	first := e.Server()
	firstLimit := first.JetStreamConfig().MaxStore
	if !first.JetStreamConfig().SyncAlways {
		t.Fatal("SyncAlways did not reach the server")
	}
	b, err := natsbus.ConnectEmbedded(ctxFor(t), testConfig("full"), e, "full", testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx := t.Context()
	const queued = 5
	for i := range queued {
		id := fmt.Sprintf("before%d", i)
		if err := b.Publish(ctx, bus.Message{Queue: bus.Transform, Subject: id, ID: id, Data: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}

	// A file that stays: once the filler goes, the disk has room, but
	// less than at the start, and a store limit sized anew would shrink.
	if err := os.WriteFile(filepath.Join(dir, "other"), make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	filler := diskfull.Fill(t, dir, 4<<20)
	blob := bytes.Repeat([]byte("imgpipe!"), 64<<10) // 512 KiB
	var kept []string
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("the disk never filled up")
		}
		key := model.OriginalKey(fmt.Sprintf("img%03d", i))
		put, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := b.Stage().Put(put, key, blob)
		cancel()
		if err != nil {
			t.Logf("put %d refused: %v", i, err)
			break
		}
		kept = append(kept, key)
	}
	t.Logf("%d blobs stored before the disk filled", len(kept))

	// The guard notices within a second or two.
	waitUntil(t, "Ping to fail", func() bool { err = b.Ping(ctx); return err != nil })
	if !errors.Is(err, bus.ErrUnavailable) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Ping on a full disk: %v; want unavailable, saying why", err)
	}
	start := time.Now()
	err = b.Publish(ctx, bus.Message{Queue: bus.Transform, Subject: "refused", ID: "refused", Data: []byte("refused")})
	if !errors.Is(err, bus.ErrUnavailable) || time.Since(start) > time.Second {
		t.Fatalf("publish on a full disk: %v after %s; want unavailable at once", err, time.Since(start))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "Ping to succeed once there is room", func() bool { return b.Ping(ctx) == nil })
	if e.Server() == first {
		t.Fatal("healed without a restart of the server")
	}
	// Its store, options and store limit: nats-server would size the
	// limit anew from a disk that has only just found room.
	if c := e.Server().JetStreamConfig(); c.StoreDir != filepath.Join(dir, "nats", "jetstream") || !c.SyncAlways || c.MaxStore != firstLimit {
		t.Fatalf("the server restarted with store %s, sync always %v, store limit %d (was %d)", c.StoreDir, c.SyncAlways, c.MaxStore, firstLimit)
	}
	if err := b.Stage().Put(ctx, model.OriginalKey("after"), blob); err != nil {
		t.Fatalf("put after healing: %v", err)
	}
	if err := b.Publish(ctx, bus.Message{Queue: bus.Transform, Subject: "after", ID: "after", Data: []byte("after")}); err != nil {
		t.Fatalf("publish after healing: %v", err)
	}
	for _, key := range append(kept, model.OriginalKey("after")) {
		got, err := b.Stage().Get(ctx, key)
		if err != nil || !bytes.Equal(got, blob) {
			t.Fatalf("%s after healing: %d bytes, %v", key, len(got), err)
		}
	}
	got := make(chan string, queued+2)
	if _, err := b.Consume(ctx, bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform"}, collect(got)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range queued + 1 {
		seen[recvData(t, got)] = true
	}
	for i := range queued {
		if !seen[fmt.Sprintf("before%d", i)] {
			t.Errorf("before%d, accepted before the disk filled, was not delivered after healing (got %v)", i, seen)
		}
	}
	if !seen["after"] {
		t.Errorf("the message published after healing was not delivered (got %v)", seen)
	}
}

// waitUntil polls ok for up to 30 s: the guard restarts JetStream only
// once the disk has room, and at most every 10 s.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStoreGuardIgnoresWhatARestartWouldNotMend: the server also calls a
// stream directory it cannot load unhealthy (one left by a stream create
// that failed, say). That refuses no write: the guard lets writes through
// and does not restart the server over it.
func TestStoreGuardIgnoresWhatARestartWouldNotMend(t *testing.T) {
	e, err := natsbus.StartEmbeddedServer(natsbus.EmbeddedOptions{Dir: t.TempDir()}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	first := e.Server()
	b, err := natsbus.ConnectEmbedded(ctxFor(t), testConfig("stray"), e, "stray", testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	stray := filepath.Join(first.JetStreamConfig().StoreDir, "$G", "streams", "STRAY")
	if err := os.MkdirAll(stray, 0o750); err != nil {
		t.Fatal(err)
	}
	if h := first.Healthz(nil); h.Status == "ok" {
		t.Fatalf("the server's health with a stray stream directory: %+v; the test needs it unhealthy", h)
	}
	time.Sleep(3 * time.Second) // three of the guard's checks
	if err := b.Ping(t.Context()); err != nil {
		t.Errorf("Ping with a stray stream directory: %v", err)
	}
	if err := b.Publish(t.Context(), bus.Message{Queue: bus.Transform, Subject: "x", ID: "x", Data: []byte("x")}); err != nil {
		t.Errorf("publish with a stray stream directory: %v", err)
	}
	if e.Server() != first {
		t.Error("the guard restarted the server over a stray stream directory")
	}
}

// TestEmbeddedRestart: during a restart a bus's calls fail at once rather
// than wait for the new server (nats.go asks for the connection holding
// its lock); afterwards they work again; and after Shutdown nothing
// brings the server back.
func TestEmbeddedRestart(t *testing.T) {
	e, err := natsbus.StartEmbeddedServer(natsbus.EmbeddedOptions{Dir: t.TempDir()}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	b, err := natsbus.ConnectEmbedded(ctxFor(t), testConfig("restart"), e, "restart", testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	restarted := make(chan error, 1)
	go func() { restarted <- e.Restart() }()
	for stop := time.After(patience); ; {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		start := time.Now()
		err := b.Ping(ctx)
		cancel()
		if took := time.Since(start); took > time.Second {
			t.Fatalf("Ping during a restart took %s (%v); want an answer within its deadline", took, err)
		}
		select {
		case err := <-restarted:
			if err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "Ping after the restart", func() bool { return b.Ping(t.Context()) == nil })
			e.Shutdown()
			time.Sleep(4 * time.Second) // a guard's checks would bring it back
			if e.Server().Running() {
				t.Fatal("the server runs again after Shutdown")
			}
			return
		case <-stop:
			t.Fatal("the restart did not end")
		default:
		}
	}
}

// TestStartOnAFullDisk: a server started on a disk that is full, holding
// more than the room left, stores again once there is room. nats-server
// would size its store limit from the free space at start, below what it
// holds, and refuse every write as over it even after the disk emptied.
func TestStartOnAFullDisk(t *testing.T) {
	dir := diskfull.Tmpfs(t, 64<<20)
	ctx := t.Context()
	blob := bytes.Repeat([]byte("imgpipe!"), 128<<10) // 1 MiB
	func() {
		e, err := natsbus.StartEmbeddedServer(natsbus.EmbeddedOptions{Dir: dir}, testLog())
		if err != nil {
			t.Fatal(err)
		}
		defer e.Shutdown()
		b, err := natsbus.ConnectEmbedded(ctxFor(t), testConfig("startfull"), e, "first", testLog())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		for i := range 8 {
			if err := b.Stage().Put(ctx, model.OriginalKey(fmt.Sprintf("held%d", i)), blob); err != nil {
				t.Fatal(err)
			}
		}
	}()
	filler := diskfull.Fill(t, dir, 2<<20)

	e, err := natsbus.StartEmbeddedServer(natsbus.EmbeddedOptions{Dir: dir}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	if limit := e.Server().JetStreamConfig().MaxStore; limit < 48<<20 {
		t.Fatalf("store limit %d on a 64 MiB disk with 2 MiB free: want the disk's size, not a share of what is free", limit)
	}
	b, err := natsbus.ConnectEmbedded(ctxFor(t), testConfig("startfull"), e, "second", testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// Whether the puts below met the full disk first or not, they store.
	waitUntil(t, "a put to succeed once there is room", func() bool {
		put, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return b.Stage().Put(put, model.OriginalKey("after"), blob) == nil
	})
	for i := range 8 {
		if got, err := b.Stage().Get(ctx, model.OriginalKey(fmt.Sprintf("held%d", i))); err != nil || !bytes.Equal(got, blob) {
			t.Fatalf("held%d after the restart: %d bytes, %v", i, len(got), err)
		}
	}
}
