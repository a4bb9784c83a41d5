//go:build unix

package local_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/model"
	"github.com/imgpipe/imgpipe/store/local"
)

// The shape of `imgpipe dev`: save2db workers each store an original, one
// result and the final record (SaveImage); logger workers each store one event per
// call, about six per image.
const (
	pipeSavers       = 16
	pipeLoggers      = 32
	pipeEventsPerImg = 6
)

// BenchmarkPipelineLoad runs b.N images through the store with the
// pipeline's concurrency and reports, per image, the process's CPU time
// (getrusage user+sys: fsync costs CPU on a VM, which a CPU profile of the
// pipeline shows) next to the wall time (ns/op). Run with -benchtime=2000x
// or so: the store grows as it runs, as it does in use.
//
// small is the image of the pipeline's benchmark (every blob small enough
// for the database), as fast as the store goes; small@200/s offers the same
// images at the pace of transforms, so that commits gather fewer writers
// (ns/op is then the pace, not the store); photo has a camera-sized
// original, stored as a file.
func BenchmarkPipelineLoad(b *testing.B) {
	for _, w := range []pipeWork{
		{name: "small", original: 50 << 10, result: 5 << 10},
		{name: "small@200/s", original: 50 << 10, result: 5 << 10, perSecond: 200},
		{name: "photo", original: 2 << 20, result: 50 << 10},
	} {
		b.Run(w.name, func(b *testing.B) { benchPipeline(b, w) })
	}
}

type pipeWork struct {
	name             string
	original, result int     // blob sizes
	perSecond        float64 // images offered per second; 0: no limit
}

func benchPipeline(b *testing.B, w pipeWork) {
	s, err := local.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := b.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	original, result := randomData(rng, w.original), randomData(rng, w.result)
	saver := func(images <-chan int) error {
		for i := range images {
			id := pipeImageID(i)
			blobs := map[string][]byte{model.OriginalKey(id): original, model.ResultKey(id, model.DefaultVariant): result}
			if err := s.SaveImage(ctx, pipeImage(id, w.original, w.result), blobs); err != nil {
				return err
			}
		}
		return nil
	}
	logger := func(events <-chan int) error {
		for i := range events {
			id := pipeImageID(i / pipeEventsPerImg)
			ev := model.Event{
				ID: fmt.Sprintf("%s.e%d.1", id, i%pipeEventsPerImg), ImageID: id, Time: time.Now().UTC(),
				Role: "logger", Instance: "bench/1", Event: model.EventSaved, Detail: "originals/" + id,
			}
			if err := s.AppendEvents(ctx, ev); err != nil {
				return err
			}
		}
		return nil
	}

	images, events := make(chan int, b.N), make(chan int, b.N*pipeEventsPerImg)
	errs := make(chan error, pipeSavers+pipeLoggers)
	before := cpuTime(b)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range pipeSavers {
		wg.Go(func() { errs <- saver(images) })
	}
	for range pipeLoggers {
		wg.Go(func() { errs <- logger(events) })
	}
	for i := range b.N {
		if w.perSecond > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(float64(i) / w.perSecond * float64(time.Second)))))
		}
		images <- i
		for e := range pipeEventsPerImg {
			events <- i*pipeEventsPerImg + e
		}
	}
	close(images)
	close(events)
	wg.Wait()
	b.StopTimer()
	cpu := cpuTime(b) - before
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/image")
	st := local.DBStats(s).TxStats
	b.ReportMetric(float64(st.GetWrite())/float64(b.N), "db-writes/image")
	b.ReportMetric(float64(st.GetPageAlloc())/1024/float64(b.N), "db-KiB/image")
}

// pipeImageID is random-looking, as the pipeline's ids (a hash) are, so
// that keys land all over the store's trees and directories.
func pipeImageID(i int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "image %d", i))
	return hex.EncodeToString(sum[:16])
}

// pipeImage is a final record of the size save2db writes.
func pipeImage(id string, originalBytes, resultBytes int) *model.Image {
	now := time.Now().UTC()
	return &model.Image{
		ID: id, Status: model.StatusDone, Spec: "fit=800x600&format=webp",
		Original:  model.Info{Format: "jpeg", Width: 1024, Height: 768, Size: int64(originalBytes), SHA256: id + id},
		Results:   []model.Result{{Variant: model.DefaultVariant, Spec: "fit=800x600&format=webp", Info: model.Info{Format: "webp", Width: 800, Height: 600, Size: int64(resultBytes)}}},
		CreatedAt: now, UpdatedAt: now, Attempts: 1,
	}
}

func randomData(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// cpuTime is the user and system CPU the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
