// Package natstest runs a real NATS cluster inside the test process: several
// nats-servers with JetStream, joined by routes on loopback, so that the bus
// can be tested with replicated streams, leader elections and a server
// going away, as a deployment beyond one machine runs it. It also gives
// tests a plain JetStream client.
package natstest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is n servers named s0..s<n-1>, each with its own store directory.
type Cluster struct {
	Servers []*server.Server
}

// StartCluster starts n clustered servers and returns once JetStream can
// place a stream replicated on all of them. They are shut down when the
// test ends.
//
// Every server routes to every cluster port, its own included (a server
// skips itself), so the ports are chosen before any server starts: each is
// one the kernel just handed out and took back. Another process can take
// one of them first; the server that meets it taken runs without a route
// listener, silently (its log is off), and is never ready. The cluster then
// starts again on other ports.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	var c *Cluster
	startRetrying(t, n, func() (url string, stop func(), err error) {
		if c, err = startCluster(t, n); err != nil {
			return "", nil, err
		}
		return c.URL(), c.shutdown, nil
	})
	return c
}

// startRetrying calls start, which starts n servers and says how to reach
// and stop them, until it succeeds (at most clusterAttempts times), then
// waits until they can place a stream replicated on all of them.
func startRetrying(t testing.TB, n int, start func() (url string, stop func(), err error)) {
	t.Helper()
	var err error
	for range clusterAttempts {
		var url string
		var stop func()
		if url, stop, err = start(); err == nil {
			t.Cleanup(stop)
			waitForPlacementAt(t, url, n)
			return
		}
		t.Logf("natstest: %v; starting the servers again on other ports", err)
	}
	t.Fatalf("natstest: no cluster after %d attempts: %v", clusterAttempts, err)
}

// clusterAttempts bounds StartCluster's tries, readyWait the wait for one
// server, and choosePort gives the cluster ports: variables for this
// package's own test.
var (
	clusterAttempts = 3
	readyWait       = 10 * time.Second
	choosePort      = pickPort
)

// startCluster starts n servers, or shuts down what it started and says
// which server was not ready.
func startCluster(t testing.TB, n int) (*Cluster, error) {
	t.Helper()
	ports := make([]int, n)
	var routes []string
	for i := range ports {
		ports[i] = choosePort(t)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	c := &Cluster{}
	dir := t.TempDir()
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("s%d", i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   filepath.Join(dir, fmt.Sprintf("s%d", i)),
			Cluster:    server.ClusterOpts{Name: "imgpipe-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
			NoSigs:     true,
			NoLog:      true,
		}
		ns, err := server.NewServer(opts)
		if err != nil {
			c.shutdown()
			return nil, fmt.Errorf("server s%d: %w", i, err)
		}
		ns.Start()
		c.Servers = append(c.Servers, ns)
	}
	for i, ns := range c.Servers {
		if !ns.ReadyForConnections(readyWait) {
			c.shutdown()
			return nil, fmt.Errorf("server %s (cluster port %d) not ready", ns.Name(), ports[i])
		}
	}
	return c, nil
}

func (c *Cluster) shutdown() {
	for _, ns := range c.Servers {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// URL lists every server's client address, as a deployment's --nats does.
func (c *Cluster) URL() string {
	var urls []string
	for _, ns := range c.Servers {
		urls = append(urls, ns.ClientURL())
	}
	return strings.Join(urls, ",")
}

// Server returns the running server named name, or nil.
func (c *Cluster) Server(name string) *server.Server {
	for _, ns := range c.Servers {
		if ns.Name() == name && ns.Running() {
			return ns
		}
	}
	return nil
}

// Serving returns the name of a running server that has client
// connections: the one a single connected process is talking to.
func (c *Cluster) Serving(t testing.TB) string {
	t.Helper()
	for _, ns := range c.Servers {
		if ns.Running() && ns.NumClients() > 0 {
			return ns.Name()
		}
	}
	t.Fatal("no server has a client")
	return ""
}

// StreamLeader returns the name of the server leading stream.
func (c *Cluster) StreamLeader(t testing.TB, stream string) string {
	t.Helper()
	return streamLeaderAt(t, c.URL(), stream)
}

// Messages returns how many messages stream holds.
func (c *Cluster) Messages(t testing.TB, stream string) uint64 {
	t.Helper()
	return messagesAt(t, c.URL(), stream)
}

func streamLeaderAt(t testing.TB, url, stream string) string {
	t.Helper()
	return streamInfoAt(t, url, "a leader of "+stream, stream, func(info *jetstream.StreamInfo) error {
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return fmt.Errorf("no leader yet")
		}
		return nil
	}).Cluster.Leader
}

func messagesAt(t testing.TB, url, stream string) uint64 {
	t.Helper()
	return streamInfoAt(t, url, "the state of "+stream, stream, func(*jetstream.StreamInfo) error { return nil }).State.Msgs
}

// streamInfoAt reads stream's info until it can, and ok accepts it.
func streamInfoAt(t testing.TB, url, what, stream string, ok func(*jetstream.StreamInfo) error) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	retryAt(t, url, what, func(js jetstream.JetStream, ctx context.Context) error {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		if info, err = s.Info(ctx); err != nil {
			return err
		}
		return ok(info)
	})
	return info
}

// waitForPlacementAt waits until the meta group has a leader and every
// server has joined it: until then stream creation fails.
func waitForPlacementAt(t testing.TB, url string, replicas int) {
	t.Helper()
	retryAt(t, url, "the cluster to place a replicated stream", func(js jetstream.JetStream, ctx context.Context) error {
		s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NATSTEST_PROBE", Replicas: replicas, Storage: jetstream.MemoryStorage})
		if err != nil {
			return err
		}
		if _, err := s.Info(ctx); err != nil {
			return err
		}
		return js.DeleteStream(ctx, "NATSTEST_PROBE")
	})
}

// JetStream is a plain client of the servers at url (or of the one an
// option names), closed when the test ends: for tests that look at or
// tamper with what the bus wrote, as an operator's tools would.
func JetStream(t testing.TB, url string, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// retryAt runs op with a client of the servers at url until it succeeds,
// for up to 30 seconds.
func retryAt(t testing.TB, url, what string, op func(jetstream.JetStream, context.Context) error) {
	t.Helper()
	js := JetStream(t, url, nats.MaxReconnects(-1))
	defer js.Conn().Close()
	Eventually(t, what, func(ctx context.Context) error { return op(js, ctx) })
}

// Eventually retries op, each try bounded at 5 seconds, until it succeeds,
// for up to 30 seconds: a leader election takes a few.
func Eventually(t testing.TB, what string, op func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := op(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pickPort returns a port the kernel just handed out and took back.
func pickPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
