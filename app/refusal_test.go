package app_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A configuration refused before anything starts is a JSON record too when
// the log is JSON, whether the values failed to load (a missing file, a
// bad environment variable) or loaded and failed validation; the format
// comes from the flag or the environment.
func TestRefusedConfigurationLoggedInJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := imgpipeBinary(t)
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"invalid", nil, []string{"serve", "--log-format", "json"}, "--nats is required"},
		{"missing file", nil, []string{"serve", "--log-format", "json", "--config", missing}, "missing.yaml"},
		{"bad variable", []string{"IMGPIPE_LOG_FORMAT=json", "IMGPIPE_WORKERS_SAVE_WORKERS=abc"},
			[]string{"worker", "--nats", "nats://127.0.0.1:1", "--store", "mongodb://127.0.0.1:1/x"}, "save_workers"},
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.Env = append(os.Environ(), c.env...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("%s: started:\n%s", c.name, out)
		}
		found := false
		for line := range strings.Lines(string(out)) {
			var rec struct{ Level, Msg, Err string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "ERROR" && rec.Msg == "imgpipe not started" && strings.Contains(rec.Err, c.want) {
				found = true
			}
		}
		if !found || !strings.Contains(string(out), "\nimgpipe: ") {
			t.Errorf("%s: want a JSON record naming %q and the plain line; output:\n%s", c.name, c.want, out)
		}
	}
}
