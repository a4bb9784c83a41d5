package natsbus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/imgpipe/imgpipe/bus"
)

func blob(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

// bytes is what the cache holds, overhead included.
func (c *blobCache) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

func TestBlobCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newBlobCache(10_000) // room for eight 1,000-byte blobs, not nine
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, k := range keys {
		c.put(k, blob(1000, k[0]))
	}
	if _, ok := c.get("a"); !ok { // a is now the most recent
		t.Fatal("a: missing")
	}
	c.put("i", blob(1000, 'i'))
	for _, k := range append(keys, "i") {
		got, ok := c.get(k)
		if want := k != "b"; ok != want || ok && !bytes.Equal(got, blob(1000, k[0])) {
			t.Errorf("%s: cached %v (%d bytes), want %v", k, ok, len(got), want)
		}
	}
	if c.bytes() > c.max {
		t.Errorf("holds %d bytes, more than its %d", c.bytes(), c.max)
	}
}

func TestBlobCacheKeepsNoLargeBlob(t *testing.T) {
	c := newBlobCache(80_000)
	c.put("k", blob(100, 1))
	c.put("k", blob(10_001, 2)) // over an eighth: not kept, and the older copy goes
	if got, ok := c.get("k"); ok {
		t.Fatalf("cached %d bytes, want nothing", len(got))
	}
	if c.bytes() != 0 {
		t.Errorf("holds %d bytes, want 0", c.bytes())
	}
	off := newBlobCache(0)
	off.put("k", blob(1, 1))
	if _, ok := off.get("k"); ok {
		t.Error("a cache of 0 bytes kept a blob")
	}
}

// TestBlobCacheReadRacingDelete: a read that began before a delete of its
// key may hold what the stage no longer has, and one that began before a
// put, what the put replaced; neither is cached. A delete of another key
// changes nothing.
func TestBlobCacheReadRacingDelete(t *testing.T) {
	c := newBlobCache(1 << 20)
	got, err := c.read("k", func() ([]byte, error) {
		c.forget("k") // while the read was on its way
		return blob(10, 1), nil
	})
	if err != nil || len(got) != 10 {
		t.Fatalf("read: %d bytes, %v", len(got), err)
	}
	if _, ok := c.get("k"); ok {
		t.Fatal("a read that raced a delete of its key was cached")
	}
	_, _ = c.read("k", func() ([]byte, error) {
		c.forget("other")
		return blob(10, 1), nil
	})
	if _, ok := c.get("k"); !ok {
		t.Fatal("a read that raced a delete of another key was not cached")
	}
	_, _ = c.read("k", func() ([]byte, error) {
		c.put("k", blob(20, 2)) // staged again while the read was on its way
		return blob(10, 1), nil
	})
	if got, _ := c.get("k"); !bytes.Equal(got, blob(20, 2)) {
		t.Fatalf("a read that raced a put replaced it: %v", got)
	}
}

// TestBlobCacheConcurrent: puts, reads and deletes from many goroutines
// (run with -race) leave the size the sum of what is held.
func TestBlobCacheConcurrent(t *testing.T) {
	c := newBlobCache(64 << 10)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				key := string(rune('a' + (g+i)%16))
				switch i % 4 {
				case 0:
					c.put(key, blob(1+i%3000, 1))
				case 1:
					_, _ = c.read(key, func() ([]byte, error) { return blob(100, 2), nil })
				case 2:
					c.forget(key)
				default:
					c.get(key)
				}
			}
		})
	}
	wg.Wait()
	var sum int64
	for _, el := range c.byKey {
		sum += el.Value.(*cachedBlob).cost()
	}
	if c.bytes() != sum || sum > c.max || len(c.reading) != 0 {
		t.Fatalf("size %d, entries hold %d, max %d, reads pending %d", c.bytes(), sum, c.max, len(c.reading))
	}
}

// TestStageReadsFromMemory: a blob this process staged or read is read
// again without a message to the server, one it deleted is not answered
// from memory, and a cache of 0 bytes sends every read to the server.
func TestStageReadsFromMemory(t *testing.T) {
	ns, err := StartEmbeddedWith(EmbeddedOptions{Dir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	open := func(name string, cacheBytes int64) *Bus {
		cfg := DefaultConfig()
		cfg.Prefix, cfg.StageCacheBytes = "cache", cacheBytes
		b, err := Connect(t.Context(), cfg, ns, name, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	ctx := t.Context()
	// reads returns what a Get of key answered and how many messages it
	// sent the server.
	reads := func(b *Bus, key string) ([]byte, uint64) {
		t.Helper()
		before := inMsgs(t, ns)
		data, err := b.Stage().Get(ctx, key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		return data, inMsgs(t, ns) - before
	}
	data := blob(600<<10, 7) // two chunks
	api, other, uncached := open("api", 64<<20), open("other", 64<<20), open("uncached", 0)
	if err := api.Stage().Put(ctx, "originals/x", data); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		b    *Bus
		sent func(uint64) bool
	}{
		{"the process that staged it", api, func(n uint64) bool { return n == 0 }},
		{"another process, first read", other, func(n uint64) bool { return n > 0 }},
		{"another process, second read", other, func(n uint64) bool { return n == 0 }},
		{"a process with no cache", uncached, func(n uint64) bool { return n > 0 }},
		{"a process with no cache, again", uncached, func(n uint64) bool { return n > 0 }},
	} {
		got, sent := reads(c.b, "originals/x")
		if !bytes.Equal(got, data) {
			t.Errorf("%s: read %d bytes, not what was staged", c.name, len(got))
		}
		if !c.sent(sent) {
			t.Errorf("%s: %d messages to the server", c.name, sent)
		}
	}
	// A checked read hashes only a cached copy: one that matches costs no
	// message, and bytes from the server are taken as they are (a wrong
	// digest does not send the read round again).
	sum := sha256.Sum256(data)
	for _, c := range []struct {
		name, digest string
		b            *Bus
		sent         uint64
	}{
		{"a cached copy that matches", hex.EncodeToString(sum[:]), api, 0},
		{"no cached copy", "not the digest", uncached, 2},
	} {
		before := inMsgs(t, ns)
		got, err := c.b.Stage().(bus.CheckedStage).GetChecked(ctx, "originals/x", c.digest)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("checked read, %s: %d bytes, %v", c.name, len(got), err)
		}
		if sent := inMsgs(t, ns) - before; sent != c.sent {
			t.Errorf("checked read, %s: %d messages to the server, want %d", c.name, sent, c.sent)
		}
	}
	if err := api.Stage().Delete(ctx, "originals/x"); err != nil {
		t.Fatal(err)
	}
	if got, err := api.Stage().Get(ctx, "originals/x"); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("after its delete: %d bytes, %v; want not found", len(got), err)
	}

	// A put whose publish fails leaves nothing to read.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := api.Stage().Put(cancelled, "originals/y", data); err == nil {
		t.Fatal("a put with a cancelled context succeeded")
	}
	if got, err := api.Stage().Get(ctx, "originals/y"); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("after a failed put: %d bytes, %v; want not found", len(got), err)
	}

	// Nor does a delete of the version the sweeper listed.
	// Listed once a later write makes it older than the stage's latest.
	for _, k := range []string{"originals/z", "originals/later"} {
		if err := api.Stage().Put(ctx, k, data); err != nil {
			t.Fatal(err)
		}
	}
	var version string
	err = api.Stage().Staged(ctx, 0, func(b bus.StagedBlob) error {
		if b.Key == "originals/z" {
			version = b.Version
		}
		return nil
	})
	if err != nil || version == "" {
		t.Fatalf("staged blobs: %v, version %q", err, version)
	}
	if ok, err := api.Stage().DeleteVersion(ctx, "originals/z", version); !ok || err != nil {
		t.Fatalf("delete version: %v, %v", ok, err)
	}
	if got, err := api.Stage().Get(ctx, "originals/z"); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("after its version was deleted: %d bytes, %v; want not found", len(got), err)
	}
}

func inMsgs(t *testing.T, ns *server.Server) uint64 {
	t.Helper()
	v, err := ns.Varz(nil)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(v.InMsgs)
}
