package local_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store/local"
)

// BenchmarkAppendEvents measures the hot path: every image writes several
// events, one call at a time per handler, with one or many handlers at once.
// Each write is durable (an fsync), so this measures the disk as much as
// the code; batching is what lets many writers share one fsync.
func BenchmarkAppendEvents(b *testing.B) {
	for _, writers := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) { benchAppend(b, writers) })
	}
}

func benchAppend(b *testing.B, writers int) {
	s, err := local.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var n atomic.Int64
	now := time.Now()
	b.SetParallelism(writers) // times GOMAXPROCS: run with -cpu 1
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			ev := model.Event{ID: fmt.Sprintf("e%d", i), ImageID: fmt.Sprintf("img%d", i/4), Time: now.Add(time.Duration(i)), Role: "logger", Event: model.EventSaved}
			if err := s.AppendEvents(b.Context(), ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
