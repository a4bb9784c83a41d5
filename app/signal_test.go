package app_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/ferrettest"
)

// TestSecondSignalStopsAtOnce: a drain may take its time (here the drain
// delay keeps the listener open 20 s); the first SIGTERM's log says a
// second stops the process at once, and it does.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := imgpipeBinary(t)
	t.Setenv("IMGPIPE_HTTP_DRAIN_DELAY", "20s")
	t.Setenv("IMGPIPE_SHUTDOWN_TIMEOUT", "60s")
	p := startProcess(t, bin, "dev", "dev", "--data-dir", t.TempDir())
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.logs.String(), "a second signal stops at once"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first SIGTERM's log does not say what a second does:\n%s", p.logs.String())
		}
	}
	select {
	case err := <-p.done:
		t.Fatalf("exited before the drain delay was over: %v", err)
	default:
	}
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err == nil || !strings.Contains(err.Error(), "terminated") {
			t.Errorf("after a second SIGTERM: %v, want killed by it", err)
		}
		t.Logf("exited %v after the second SIGTERM: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10 s after a second SIGTERM, in a drain of 20 s\n%s", p.logs.String())
	}
}

// TestFailureLoggedInTheLogsFormat: a start that fails once the log is set
// up says why in the log's own format (a collector of JSON lines would
// otherwise see the process end without a reason), besides the plain
// line on stderr for whoever runs it by hand. Here MongoDB refuses the
// database name, which fails at once.
func TestFailureLoggedInTheLogsFormat(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cmd := exec.Command(imgpipeBinary(t), "dev", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0",
		"--log-format", "json", "--store", ferrettest.For(t)+"$bad")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("started with a database name MongoDB refuses:\n%s", out)
	}
	var found bool
	for line := range strings.Lines(string(out)) {
		var rec struct{ Level, Msg, Err string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "ERROR" && rec.Msg == "imgpipe stopped" && strings.Contains(rec.Err, "Invalid namespace") {
			found = true
		}
	}
	if !found || !strings.Contains(string(out), "\nimgpipe: ") {
		t.Fatalf("want a JSON error record and the plain line; output:\n%s", out)
	}
}
