package natsbus_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/model"
)

// TestLostStreamsMadeAgain: a server that lost every stream (its store
// wiped, another server in its place) gets them back from the processes
// still connected to it: from a consumer that finds its stream gone, and
// from Ping (what /readyz asks), which would otherwise say ready while
// every read and write failed. Work published afterwards is delivered,
// and the status table answers.
func TestLostStreamsMadeAgain(t *testing.T) {
	t.Cleanup(natsbus.SetConsumerCheckEvery(50 * time.Millisecond))
	ns := startServer(t, t.TempDir(), "")
	worker := connect(t, testConfig("lost"), ns)
	api := connect(t, testConfig("lost"), ns) // no consumer: only Ping heals it
	ctx := ctxFor(t)
	got := make(chan string, 4)
	cons, err := worker.Consume(ctx, bus.ConsumerConfig{Queue: bus.Save, Durable: "save"}, collect(got))
	if err != nil {
		t.Fatal(err)
	}

	deleteStreams(t, ns)
	deadline := time.Now().Add(20 * time.Second)
	for worker.Publish(ctx, bus.Message{Queue: bus.Save, Subject: "abc", ID: "abc", Data: []byte("work")}) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the consumer did not make its stream again")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := recvData(t, got); s != "work" {
		t.Fatalf("got %q", s)
	}

	// Now with no consumer left to notice. The store binding, lost with
	// the streams, is recorded again from what the process had checked.
	if err := cons.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	ours := bus.StoreBinding{Store: "ours", Where: "/data/store", By: "api", At: time.Now().UTC()}
	if _, err := api.BindStore(ctx, ours, false); err != nil {
		t.Fatal(err)
	}
	deleteStreams(t, ns)
	if _, err := api.Status().Get(ctx, "0123456789abcdef0123456789abcdef"); err == nil {
		t.Fatal("a read of a lost bucket succeeded")
	}
	if err := api.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	img := &model.Image{ID: "0123456789abcdef0123456789abcdef", Status: model.StatusQueued, CreatedAt: time.Now().UTC()}
	if _, created, err := api.Status().Create(ctx, img); err != nil || !created {
		t.Fatalf("status create after ping: %v, created %v", err, created)
	}
	if cur, err := api.Status().Get(ctx, img.ID); err != nil || cur.Status != model.StatusQueued {
		t.Fatalf("status get after ping: %+v %v", cur, err)
	}
	if got, err := worker.BindStore(ctx, bus.StoreBinding{Store: "another", By: "late"}, false); err != nil || got.Store != "ours" {
		t.Fatalf("a binding after the heal: %+v, %v; want the one recorded before the loss", got, err)
	}
}

// deleteStreams deletes every stream of ns, as a wiped store would lose them.
func deleteStreams(t *testing.T, ns *server.Server) {
	t.Helper()
	js := rawJS(t, ns)
	names := js.StreamNames(ctxFor(t))
	var all []string
	for name := range names.Name() {
		all = append(all, name)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	for _, name := range all {
		if err := js.DeleteStream(ctxFor(t), name); err != nil {
			t.Fatal(err)
		}
	}
}
