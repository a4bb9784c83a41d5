package natstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Procs is n nats-servers, each a process of its own (s0..s<n-1>), for the
// failure an in-process server cannot stage: a server killed outright
// (SIGKILL), with no shutdown, no leadership handed over and no last write,
// as an OOM kill or a crash leaves it. (The kernel still closes its
// sockets, so clients see the loss at once; a machine that vanishes leaves
// them half-open until pings notice, which this does not stage.)
type Procs struct {
	names   []string
	clients []string // client URLs
	monitor []string // monitoring base URLs
	cmds    []*exec.Cmd
	exited  []chan struct{} // closed when the process has been waited for
	logs    []*tail
}

// StartProcs builds nats-server from the module's own dependency (about
// 1.5 s, into the test's temporary directory) and starts n clustered
// processes, returning once JetStream can place a stream replicated on all
// of them. Like StartCluster, it starts again on other ports when one it
// chose was taken first. The processes are killed when the test ends, or
// by the kernel if the test binary dies first.
func StartProcs(t testing.TB, n int) *Procs {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nats-server")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		t.Fatalf("go build nats-server: %v: %s", err, out)
	}
	var p *Procs
	startRetrying(t, n, func() (url string, stop func(), err error) {
		if p, err = startProcs(t, bin, n); err != nil {
			return "", nil, err
		}
		return p.URL(), p.killAll, nil
	})
	return p
}

// monitorClient bounds each look at a server's monitoring port: a port
// taken by something that accepts and never answers must not hang the
// wait.
var monitorClient = &http.Client{Timeout: 2 * time.Second}

func startProcs(t testing.TB, bin string, n int) (*Procs, error) {
	t.Helper()
	p := &Procs{}
	var routes []string
	ports := make([][3]int, n) // client, cluster, monitoring
	for i := range ports {
		for j := range ports[i] {
			ports[i][j] = choosePort(t)
		}
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i][1]))
	}
	dir := t.TempDir()
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		cmd := exec.Command(bin, "-n", name, "-a", "127.0.0.1", "-p", fmt.Sprint(ports[i][0]),
			"-m", fmt.Sprint(ports[i][2]), "-js", "-sd", filepath.Join(dir, name),
			"--cluster_name", "imgpipe-test", "--cluster", routes[i], "--routes", strings.Join(routes, ","))
		// Its log is kept for the error should it not come up.
		logs := &tail{}
		cmd.Stdout, cmd.Stderr = logs, logs
		dieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			p.killAll()
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		p.names = append(p.names, name)
		p.clients = append(p.clients, fmt.Sprintf("nats://127.0.0.1:%d", ports[i][0]))
		p.monitor = append(p.monitor, fmt.Sprintf("http://127.0.0.1:%d", ports[i][2]))
		p.cmds, p.exited = append(p.cmds, cmd), append(p.exited, exited)
		p.logs = append(p.logs, logs)
	}
	for i, name := range p.names {
		if err := p.waitHealthy(i); err != nil {
			p.killAll()
			return nil, fmt.Errorf("server %s (ports %v): %w", name, ports[i], err)
		}
	}
	return p, nil
}

// waitHealthy waits, for up to readyWait, until server i's monitoring
// port says it is healthy and is that server's (another program could
// hold the port, /healthz and all). A server that met a port taken exits,
// which ends the wait at once.
func (p *Procs) waitHealthy(i int) error {
	deadline := time.Now().Add(readyWait)
	for {
		select {
		case <-p.exited[i]:
			return fmt.Errorf("exited (%v): %s", p.cmds[i].ProcessState, p.logs[i])
		default:
		}
		var v struct {
			Name string `json:"server_name"`
		}
		err := getJSON(p.monitor[i]+"/varz", &v)
		if err == nil && v.Name != p.names[i] {
			err = fmt.Errorf("the monitoring port answers for %q", v.Name)
		}
		if err == nil {
			var resp *http.Response
			if resp, err = monitorClient.Get(p.monitor[i] + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
				err = fmt.Errorf("healthz: %s", resp.Status)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy after %s: %v", readyWait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL lists every server's client address, as a deployment's --nats does.
func (p *Procs) URL() string { return strings.Join(p.clients, ",") }

// Serving returns the name of a live server that has client connections:
// the one a single connected process is talking to.
func (p *Procs) Serving(t testing.TB) string {
	t.Helper()
	for i, name := range p.names {
		var v struct{ Connections int }
		if p.alive(i) && getJSON(p.monitor[i]+"/varz", &v) == nil && v.Connections > 0 {
			return name
		}
	}
	t.Fatal("no server has a client")
	return ""
}

// Kill ends server name with SIGKILL and waits until it is gone.
func (p *Procs) Kill(t testing.TB, name string) {
	t.Helper()
	for i, n := range p.names {
		if n == name {
			if err := p.cmds[i].Process.Kill(); err != nil {
				t.Fatalf("kill %s: %v", name, err)
			}
			<-p.exited[i]
			return
		}
	}
	t.Fatalf("no server %s", name)
}

// StreamLeader returns the name of the server leading stream.
func (p *Procs) StreamLeader(t testing.TB, stream string) string {
	t.Helper()
	return streamLeaderAt(t, p.URL(), stream)
}

// Messages returns how many messages stream holds.
func (p *Procs) Messages(t testing.TB, stream string) uint64 {
	t.Helper()
	return messagesAt(t, p.URL(), stream)
}

func (p *Procs) alive(i int) bool {
	select {
	case <-p.exited[i]:
		return false
	default:
		return true
	}
}

func (p *Procs) killAll() {
	for i, cmd := range p.cmds {
		if p.alive(i) {
			_ = cmd.Process.Kill()
			<-p.exited[i]
		}
	}
}

func getJSON(url string, v any) error {
	resp, err := monitorClient.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// tail keeps the last 2 KB written to it, safe to read while written.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - 2048; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
