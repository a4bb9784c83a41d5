package natstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// A cluster port taken by someone else between its choice and the server's
// start leaves that server without routes: StartCluster starts again on
// other ports, and the cluster it returns works (StartCluster waits until
// it places a stream replicated on every server).
func TestStartClusterRetriesWhenAPortIsTaken(t *testing.T) {
	defer func(w time.Duration) { readyWait = w }(readyWait)
	readyWait = 3 * time.Second
	takenPort, calls := firstPortTaken(t)
	c := StartCluster(t, 3)
	// Two attempts at least (a loaded machine may need a third).
	if *calls < 6 || *calls%3 != 0 {
		t.Errorf("%d ports chosen, want whole attempts of three servers, two at least", *calls)
	}
	for _, ns := range c.Servers {
		if addr := ns.ClusterAddr(); addr == nil || addr.Port == takenPort {
			t.Errorf("server %s listens for routes on %v", ns.Name(), addr)
		}
	}
}

// The same for a cluster of processes: the server that meets its port
// taken exits, and the servers start again on other ports.
func TestStartProcsRetriesWhenAPortIsTaken(t *testing.T) {
	takenPort, calls := firstPortTaken(t)
	p := StartProcs(t, 3)
	if *calls < 18 || *calls%9 != 0 {
		t.Errorf("%d ports chosen, want whole attempts of three servers with three ports each, two at least", *calls)
	}
	for _, url := range p.clients {
		if strings.HasSuffix(url, fmt.Sprintf(":%d", takenPort)) {
			t.Errorf("a server listens on the taken port: %s", url)
		}
	}
}

// firstPortTaken makes the first port choosePort gives one a listener of
// the test holds, and counts the choices, until the test ends.
func firstPortTaken(t *testing.T) (port int, calls *int) {
	t.Helper()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	port, calls = taken.Addr().(*net.TCPAddr).Port, new(int)
	prev := choosePort
	t.Cleanup(func() { choosePort = prev })
	choosePort = func(t testing.TB) int {
		*calls++
		if *calls == 1 {
			return port // the first attempt's first server meets it taken
		}
		return pickPort(t)
	}
	return port, calls
}
