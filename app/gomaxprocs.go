package app

import (
	"log/slog"
	"os"
	"runtime"
)

// moreProcs gives a process that transforms half a P more per core than
// Go's default, unless GOMAXPROCS is set in its environment, and returns
// what undoes it.
//
// A transform worker spends much of each image in libvips calls that hold
// its goroutine's P while no core works for the goroutine: the encode
// waits on libvips' own worker thread, which computes off Go's books, as
// fdatasync waits on the disk. Go hands such a P to other goroutines only
// once sysmon finds it blocked, a sleep of 20 µs or more later. With one P
// per core the HTTP, bus and store goroutines queued behind those Ps: on
// the bench's small images (2 cores, `imgpipe dev`), GODEBUG=schedtrace
// showed no idle P and goroutines waiting throughout, while the cores were
// a quarter idle. Three Ps instead of two made the pipeline 12% faster
// (494 images a second against 436, three interleaved runs each; four and
// six Ps did no better, for more CPU per image spent looking for work).
// bimg alone, a loop with no other Go work to hold up, gained nothing.
// The raise is fixed at start: Go no longer follows a changed container
// CPU limit until undo hands GOMAXPROCS back to its default.
func moreProcs(c *Config, log *slog.Logger) (undo func()) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set || !c.has(RoleTransform) {
		return func() {}
	}
	before := runtime.GOMAXPROCS(0)
	after := before + max(1, before/2)
	runtime.GOMAXPROCS(after)
	log.Debug("GOMAXPROCS raised for the transform role", "from", before, "to", after)
	return func() { runtime.SetDefaultGOMAXPROCS() }
}
