package app

import (
	"log/slog"
	"os"
	"runtime"
	"testing"
)

// A process that transforms gets half a P more per core, and gives it
// back; one that does not, or whose environment sets GOMAXPROCS, keeps
// Go's choice.
func TestMoreProcsForTheTransformRole(t *testing.T) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		t.Skip("GOMAXPROCS is set in this test's environment")
	}
	quiet := slog.New(slog.DiscardHandler)
	before := runtime.GOMAXPROCS(0)
	cfg := DefaultConfig()

	undo := moreProcs(&cfg, quiet)
	if got, want := runtime.GOMAXPROCS(0), before+max(1, before/2); got != want {
		t.Errorf("with every role: GOMAXPROCS %d, want %d (from %d)", got, want, before)
	}
	undo()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("undone: GOMAXPROCS %d, want %d back", got, before)
	}

	cfg.Roles = []string{RoleAPI, RoleSave2DB, RoleLogger}
	moreProcs(&cfg, quiet)()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("without transform: GOMAXPROCS %d, want %d", got, before)
	}

	cfg.Roles = []string{RoleTransform}
	t.Setenv("GOMAXPROCS", "1")
	undo = moreProcs(&cfg, quiet)
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("with GOMAXPROCS set: %d, want %d untouched", got, before)
	}
	undo()
}
