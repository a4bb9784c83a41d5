package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/bus"
	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/model"
)

// publishBatches puts n batches of size events on the activity queue, as
// processes do, and returns the events' ids in order.
func publishBatches(t *testing.T, b *natsbus.Bus, n, size int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		batch := make([]model.Event, size)
		for j := range batch {
			id := fmt.Sprintf("ev-%d-%d", i, j)
			batch[j] = model.Event{ID: id, ImageID: "img", Event: "test", Role: "api", Time: time.Now().UTC()}
			ids = append(ids, id)
		}
		data, _ := json.Marshal(batch)
		if err := b.Publish(t.Context(), bus.Message{Queue: bus.Activity, Subject: "batch", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// readFeed reads the feed from Last-Event-ID last until it has want events
// (or 20 s pass), and returns their ids.
func readFeed(t *testing.T, base, last string, want int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/events", nil)
	req.Header.Set("Last-Event-ID", last)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []string
	sc := bufio.NewScanner(resp.Body)
	for len(got) < want && sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var ev model.Event
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.ID)
		}
	}
	return got
}

// A resumed feed replays everything after the position it was given, a
// backlog of thousands of events included: the buffer towards a slow
// client holds its own watch back rather than drop lines, whose ids the
// client would resume after. Dropping, 2,075 of 5,119 came through.
func TestResumeReplaysAWholeBacklog(t *testing.T) {
	e, _, b, _ := pendingImage(t)
	srv := httptest.NewServer(e)
	defer srv.Close()
	ids := publishBatches(t, b, 20, 256)
	got := readFeed(t, srv.URL, "1.0", len(ids)-1)
	if len(got) != len(ids)-1 || got[0] != ids[1] || got[len(got)-1] != ids[len(ids)-1] {
		t.Fatalf("replayed %d events, want the %d after 1.0", len(got), len(ids)-1)
	}
}

// A position the stream never reached (from a stream since recreated)
// starts at the next message, instead of waiting in silence for that
// sequence.
func TestResumeFromBeyondTheStream(t *testing.T) {
	e, _, b, _ := pendingImage(t)
	srv := httptest.NewServer(e)
	defer srv.Close()
	done := make(chan []string, 1)
	go func() { done <- readFeed(t, srv.URL, "5000.3", 3) }()
	// Batches until the feed has one: when its watch starts is its own.
	for {
		publishBatches(t, b, 1, 3)
		select {
		case got := <-done:
			if len(got) != 3 || got[0] != "ev-0-0" || got[2] != "ev-0-2" {
				t.Fatalf("events %v, want one whole batch", got)
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
