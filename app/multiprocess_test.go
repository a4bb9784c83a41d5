package app_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/ferrettest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
	"github.com/nats-io/nats-server/v2/server"
)

// TestSeparateProcesses runs the roles as the binary would run in a cluster:
// two api processes, one transform worker and one save2db+logger worker, on
// one NATS server and FerretDB (a real MongoDB wire server). An image taken
// by one api instance is served by the other.
func TestSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts four processes")
	}
	bin := imgpipeBinary(t)
	ns, common := backends(t)
	api1 := startProcess(t, bin, "api1", append([]string{"serve", "--roles=api"}, common...)...)
	api2 := startProcess(t, bin, "api2", append([]string{"serve", "--roles=api"}, common...)...)
	transformer := startProcess(t, bin, "transform", append([]string{"worker", "--roles=transform"}, common...)...)
	saver := startProcess(t, bin, "save2db", append([]string{"worker", "--roles=save2db,logger"}, common...)...)

	data := fixtures.JPEG(640, 480, 77)
	id := upload(t, api1.url, "width=320&format=png", data)
	res := waitOK(t, api2.url, id)
	if format, img := apptest.Decode(t, res.Body); format != "png" || img.Bounds().Dx() != 320 || img.Bounds().Dy() != 240 {
		t.Fatalf("result via the other api: %s %v", format, img.Bounds())
	}
	if orig := apptest.Get(t, api2.url+"/v1/images/"+id+"/original"); !bytes.Equal(orig.Body, data) {
		t.Fatal("original via the other api differs")
	}
	waitSaved(t, api2.url, id)
	var roles []string
	for _, e := range activity(t, api1.url, id) {
		roles = append(roles, e.Role+"@"+e.Instance)
	}
	for _, want := range []string{"api@api1", "transform@transform", "save2db@save2db"} {
		if !strings.Contains(strings.Join(roles, " "), want) {
			t.Errorf("activity %v lacks %s", roles, want)
		}
	}

	// Every process drains and exits cleanly on SIGTERM, and says so.
	for _, p := range []*process{transformer, saver, api2} {
		if err := p.stop(); err != nil {
			t.Errorf("%s: %v\n%s", p.name, err, p.logs.String())
		} else if !strings.Contains(p.logs.String(), "imgpipe stopped") {
			t.Errorf("%s: the log does not say it stopped:\n%s", p.name, p.logs.String())
		}
	}

	// With the bus gone, an upload is refused with 503 and Retry-After, and
	// the process stays up.
	ns.Shutdown()
	resp := apptest.Upload(t, api1.url, "width=10", fixtures.JPEG(50, 50, 78))
	if resp.Status != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("upload without a bus: %d %s (Retry-After %q)", resp.Status, resp.Body, resp.Header.Get("Retry-After"))
	}
	if ready := apptest.Get(t, api1.url+"/readyz"); ready.Status != http.StatusServiceUnavailable {
		t.Errorf("/readyz without a bus: %d", ready.Status)
	}
	if health := apptest.Get(t, api1.url+"/healthz"); health.Status != http.StatusOK {
		t.Errorf("/healthz: %d", health.Status)
	}
	if err := api1.stop(); err != nil {
		t.Errorf("api1: %v", err)
	}
}

func TestServeRequiresNATSAndStore(t *testing.T) {
	bin := imgpipeBinary(t)
	out, err := exec.Command(bin, "serve", "--roles=api").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--nats is required") || !strings.Contains(string(out), "--store is required") {
		t.Fatalf("serve without URLs: err=%v\n%s", err, out)
	}
	out, err = exec.Command(bin, "worker", "--roles=transform,painter", "--nats", "nats://x", "--store", "mongodb://x").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown role "painter"`) {
		t.Fatalf("unknown role: err=%v\n%s", err, out)
	}
	out, _ = exec.Command(bin, "--help").CombinedOutput()
	for _, role := range []string{"api", "ui", "transform", "save2db", "logger"} {
		if !strings.Contains(string(out), "  "+role) {
			t.Errorf("--help does not explain role %s", role)
		}
	}
}

type process struct {
	name string
	url  string
	cmd  *exec.Cmd
	logs *logBuffer
	done chan error
}

// logBuffer collects a child's output, which the test reads while the
// child still writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// listening finds the address the process reports it listens on, in its
// text or JSON log.
var listening = regexp.MustCompile(`msg"?[=:]"?listening.*url"?[=:]"?(http://[0-9.]+:[0-9]+)`)

// backends starts what separate processes share, a NATS server on a TCP
// port and FerretDB, and returns the flags that point a process at them.
// Both stop when the test ends, after the processes started since.
func backends(t *testing.T) (*server.Server, []string) {
	t.Helper()
	dir := t.TempDir()
	ns, err := natsbus.StartEmbeddedWith(natsbus.EmbeddedOptions{Dir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	mongoURI, stopMongo, err := ferrettest.Start(filepath.Join(dir, "ferret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopMongo)
	return ns, []string{"--nats", ns.ClientURL(), "--store", mongoURI, "--log-format", "json"}
}

// startProcess runs the binary on a port the kernel picks (read back from
// its log, so no other process can take it in between) and waits for
// /readyz.
func startProcess(t *testing.T, bin, name string, args ...string) *process {
	t.Helper()
	args = append(args, "--listen", "127.0.0.1:0", "--instance", name)
	p := &process{name: name, logs: &logBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.Env = append(os.Environ(), "IMGPIPE_DATA_DIR="+t.TempDir())
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("--- %s logs ---\n%s", name, p.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if p.url == "" {
			if m := listening.FindStringSubmatch(p.logs.String()); m != nil {
				p.url = m[1]
			}
		}
		var resp *http.Response
		err := errors.New("not listening yet")
		if p.url != "" {
			resp, err = http.Get(p.url + "/readyz")
		}
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("%s exited: %v\n%s", name, err, p.logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60s\n%s", name, p.logs.String())
		}
	}
}

// stop sends SIGTERM and requires a clean exit within 30 s.
func (p *process) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("did not exit within 30s of SIGTERM")
	}
}

type event struct {
	Role, Event, Instance string
	Time                  time.Time
}

func activity(t *testing.T, base, id string) []event {
	var body struct{ Events []event }
	_ = json.Unmarshal(apptest.Get(t, base+"/v1/images/"+id+"/activity").Body, &body)
	return body.Events
}
