package mongo_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/ferrettest"
	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/store/mongo"
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

// TestInvalidURLRefusedAtOnce: a URL the driver cannot parse fails as
// misconfigured (no retry mends it), saying what is wrong, never quoting
// the credentials; an SRV name that does not resolve may resolve later.
func TestInvalidURLRefusedAtOnce(t *testing.T) {
	for _, c := range []struct{ url, says string }{
		{"mongodb://u:s3cret@h/db?authMechanism=BOGUS", "invalid auth mechanism"},
		{"mongodb://u:s3cret@h:notaport/db", "port must be an integer"},
		{"mongodb://u:s3cr%zz@h/db", "not escaped"},
		{"mongodb://u:s3cret@h/db?tls=maybe", `invalid value for "tls"`},
	} {
		_, err := mongo.Open(t.Context(), c.url, nil)
		if !errors.Is(err, store.ErrMisconfigured) || !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), "s3cr") {
			t.Errorf("%s: %v; want misconfigured, saying %q, without the password", c.url, err, c.says)
		}
	}
	_, err := mongo.Open(t.Context(), "mongodb+srv://u:s3cret@nonexistent.invalid/db", nil)
	if err == nil || errors.Is(err, store.ErrMisconfigured) || strings.Contains(err.Error(), "s3cr") {
		t.Errorf("an SRV name that does not resolve: %v; want an error to retry, without the password", err)
	}
}
