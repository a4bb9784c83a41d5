package app

import (
	"bytes"
	"strings"
	"testing"
)

// The run commands take the run flags; version, which runs nothing, lists
// none of them in its help.
func TestRunFlagsOnlyOnRunCommands(t *testing.T) {
	runFlags := []string{"config", "data-dir", "listen", "nats", "store", "rebind-store", "instance", "log-format", "log-level"}
	root := NewRootCommand()
	for _, name := range []string{"dev", "serve", "worker"} {
		cmd, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range runFlags {
			if cmd.Flags().Lookup(f) == nil {
				t.Errorf("%s has no --%s", name, f)
			}
		}
	}
	var help bytes.Buffer
	root.SetOut(&help)
	root.SetArgs([]string{"version", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(help.String(), "imgpipe version") {
		t.Fatalf("version --help printed:\n%s", help.String())
	}
	for _, f := range runFlags {
		if strings.Contains(help.String(), "--"+f) {
			t.Errorf("version --help lists --%s:\n%s", f, help.String())
		}
	}
}
