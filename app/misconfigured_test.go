package app_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/app"
	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/ferrettest"
	"github.com/imgpipe/imgpipe/store"
)

// TestInvalidDatabaseFailsAtOnce: a database name MongoDB refuses (a "$"
// in it) fails the start at once with the server's reason, as a NATS
// configuration the servers refuse does, rather than being retried until
// startup_timeout (ten minutes here) as if the store were away.
func TestInvalidDatabaseFailsAtOnce(t *testing.T) {
	err := refusedStart(t, ferrettest.For(t)+"$2")
	if !errors.Is(err, store.ErrMisconfigured) || !strings.Contains(err.Error(), "Invalid namespace") {
		t.Fatalf("start with an invalid database name: %v, want the server's refusal", err)
	}
}

// refusedStart starts a process on storeURL, with ten minutes to reach it,
// and returns the error it stops with, which must come within a minute.
func refusedStart(t *testing.T, storeURL string) error {
	t.Helper()
	cfg := apptest.Config(t)
	cfg.Store.URL = storeURL
	cfg.StartupTimeout = 10 * time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.New(cfg, slog.New(slog.DiscardHandler)).Run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatal("start still retrying after a minute")
		return nil
	}
}

// TestFailedLoginFailsAtOnce: credentials the server refuses fail the start
// at once with its reason, without the password, rather than being tried
// again until startup_timeout. (FerretDB refuses every SCRAM login, as a
// MongoDB server refuses a wrong password: AuthenticationFailed.)
func TestFailedLoginFailsAtOnce(t *testing.T) {
	err := refusedStart(t, strings.Replace(ferrettest.For(t), "mongodb://", "mongodb://imgpipe:s3cret@", 1))
	if !errors.Is(err, store.ErrMisconfigured) || !strings.Contains(err.Error(), "AuthenticationFailed") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("start with a refused login: %v, want the server's refusal without the password", err)
	}
}
