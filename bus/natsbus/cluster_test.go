package natsbus_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/bus/bustest"
	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/internal/natstest"
	"github.com/imgpipe/imgpipe/model"
)

// clusterConfig is a bus on every server of c, everything replicated on
// all three.
func clusterConfig(c *natstest.Cluster, prefix string) natsbus.Config {
	cfg := testConfig(prefix)
	cfg.URL = c.URL()
	cfg.Replicas = 3
	return cfg
}

// TestConformanceOnCluster runs the whole suite on three clustered servers
// with every stream and bucket replicated three times, as a deployment
// beyond one machine runs: reads by direct get may be answered by any
// replica, and writes go through each stream's leader.
func TestConformanceOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server cluster")
	}
	c := natstest.StartCluster(t, 3)
	var n atomic.Int32
	bustest.Run(t, func(t *testing.T) bus.Bus {
		cfg := clusterConfig(c, fmt.Sprintf("r%d", n.Add(1)))
		cfg.AckWait = bustest.HungAfter
		return connect(t, cfg, nil)
	})
}

// TestClusterLeaderLoss: when the server leading the streams goes away,
// what was written before is still there once the others elect a new
// leader: staged blobs, status records and queued messages, which a
// consumer then receives. The client rides over to a surviving server.
func TestClusterLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server cluster")
	}
	c := natstest.StartCluster(t, 3)
	b := connect(t, clusterConfig(c, "failover"), nil)
	ctx := ctxFor(t)

	blob := bytes.Repeat([]byte("staged bytes "), 100_000) // three chunks
	if err := b.Stage().Put(ctx, "originals/abc", blob); err != nil {
		t.Fatal(err)
	}
	rec := &model.Image{ID: "abc", Status: model.StatusQueued}
	if _, _, err := b.Status().Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, bus.Message{Queue: bus.Transform, Subject: "abc", ID: "transform.abc", Data: []byte("work")}); err != nil {
		t.Fatal(err)
	}

	leader := c.StreamLeader(t, "FAILOVER_STAGE")
	t.Logf("stopping %s, the stage stream's leader", leader)
	ns := c.Server(leader)
	ns.Shutdown()
	ns.WaitForShutdown()

	// Until a new leader is elected an operation can fail; the roles ride
	// that out with redeliveries, the test by asking again.
	natstest.Eventually(t, "the staged blob, read through the new leader", func(ctx context.Context) error {
		got, err := b.Stage().GetLatest(ctx, "originals/abc")
		if err == nil && !bytes.Equal(got, blob) {
			return fmt.Errorf("read %d bytes, not the %d staged", len(got), len(blob))
		}
		return err
	})
	natstest.Eventually(t, "the staged blob by direct get", func(ctx context.Context) error {
		got, err := b.Stage().Get(ctx, "originals/abc")
		if err == nil && !bytes.Equal(got, blob) {
			return fmt.Errorf("read %d bytes, not the %d staged", len(got), len(blob))
		}
		return err
	})
	natstest.Eventually(t, "the status record", func(ctx context.Context) error {
		got, err := b.Status().Get(ctx, "abc")
		if err == nil && got.Status != model.StatusQueued {
			return fmt.Errorf("status %s", got.Status)
		}
		return err
	})
	got := make(chan string, 1)
	if _, err := b.Consume(ctxFor(t), bus.ConsumerConfig{Queue: bus.Transform, Durable: "transform", Workers: 1},
		func(_ context.Context, d bus.Delivery) error { got <- string(d.Data()); return nil }); err != nil {
		t.Fatal(err)
	}
	if data := recvData(t, got); data != "work" {
		t.Fatalf("consumed %q", data)
	}
	// And new writes go through.
	natstest.Eventually(t, "a write after the loss", func(ctx context.Context) error {
		return b.Stage().Put(ctx, "results/abc/default", []byte("result"))
	})
}
