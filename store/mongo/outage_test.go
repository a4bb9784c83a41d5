package mongo_test

import (
	"errors"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/ferrettest"
	"github.com/imgpipe/imgpipe/store"
)

// TestOutageAnsweredInSeconds: with the server gone, a read fails once no
// server can be found for it (5 s), not after the driver's 30 s, which
// held every request of an outage that long. A URL that names its own
// serverSelectionTimeoutMS keeps it.
func TestOutageAnsweredInSeconds(t *testing.T) {
	uri, stop, err := ferrettest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	quick := openStore(t, uri+"outage")
	defer quick.Close()
	own := openStore(t, uri+"outage?serverSelectionTimeoutMS=1500")
	defer own.Close()
	stop()

	for _, c := range []struct {
		name     string
		s        store.Store
		from, to time.Duration
	}{{"default", quick, 4 * time.Second, 10 * time.Second}, {"the URL's", own, time.Second, 4 * time.Second}} {
		start := time.Now()
		_, err := c.s.GetImage(t.Context(), "0123456789abcdef0123456789abcdef")
		took := time.Since(start)
		if err == nil || errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s timeout: a read with the server gone: %v", c.name, err)
		}
		if took < c.from || took > c.to {
			t.Errorf("%s timeout: the read failed after %v, want %v to %v: %v", c.name, took.Round(time.Millisecond), c.from, c.to, err)
		}
	}
}
