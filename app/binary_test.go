package app_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The imgpipe binary, built once for every test that runs it as separate
// processes.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

func imgpipeBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "imgpipe-bin-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "imgpipe")
		built.out, built.err = exec.Command("go", "build", "-o", built.path, "..").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("build: %v\n%s", built.err, built.out)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}
