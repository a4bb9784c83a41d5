package transform

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/h2non/bimg"

	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// TestCPUAgainstBimg measures CPU time per image (getrusage user+system,
// libvips' own threads included) of Process and of bare bimg on the bench's
// workloads, in the same process, in alternating rounds, two goroutines as
// in bench/. docs/transform.md quotes it. Slow, so only when asked:
//
//	IMGPIPE_CPUTEST=1 go test -run TestCPUAgainstBimg -v ./transform/
//
// IMGPIPE_CPUTEST_SMALL and _LARGE set the image counts (200 and 40),
// _ROUNDS the rounds (5), _ONLY a comma-separated list of workloads.
func TestCPUAgainstBimg(t *testing.T) {
	if os.Getenv("IMGPIPE_CPUTEST") == "" {
		t.Skip("set IMGPIPE_CPUTEST=1 to measure CPU time")
	}
	nSmall, nLarge, rounds := envInt("IMGPIPE_CPUTEST_SMALL", 200), envInt("IMGPIPE_CPUTEST_LARGE", 40), envInt("IMGPIPE_CPUTEST_ROUNDS", 5)
	e := testEngine(t)
	type workload struct {
		name   string
		w, h   int
		n      int
		query  string
		opts   bimg.Options
		inputs [][]byte
	}
	small := func(f string, typ bimg.ImageType) workload {
		return workload{name: "small-" + f, w: 640, h: 480, n: nSmall,
			query: "width=160&height=160&fit=cover&format=" + f + "&quality=80",
			opts:  bimg.Options{Width: 160, Height: 160, Crop: true, Quality: 80, Type: typ, StripMetadata: true}}
	}
	loads := []workload{
		small("jpeg", bimg.JPEG), small("webp", bimg.WEBP), small("png", bimg.PNG),
		{name: "large-webp", w: 3840, h: 2160, n: nLarge, query: "width=800&height=600&fit=inside&format=webp&quality=80",
			opts: bimg.Options{Width: 800, Height: 600, Quality: 80, Type: bimg.WEBP, StripMetadata: true}},
	}
	only := os.Getenv("IMGPIPE_CPUTEST_ONLY")
	inputs := map[[2]int][][]byte{}
	for _, w := range loads {
		if only != "" && !slices.Contains(strings.Split(only, ","), w.name) {
			continue
		}
		key := [2]int{w.w, w.h}
		if len(inputs[key]) < w.n {
			for i := len(inputs[key]); i < w.n; i++ {
				inputs[key] = append(inputs[key], fixtures.JPEG(w.w, w.h, uint64(i)+1))
			}
		}
		w.inputs = inputs[key][:w.n]
		s := spec(t, e, w.query)
		engine := func(data []byte) error {
			_, _, err := e.Process(context.Background(), Input{Data: data, Spec: s})
			return err
		}
		vips := func(data []byte) error {
			_, err := bimg.NewImage(data).Process(w.opts)
			return err
		}
		runTimed(t, w.inputs, engine) // warm up both
		runTimed(t, w.inputs[:min(len(w.inputs), 20)], vips)
		var ecpu, bcpu []float64
		for r := 0; r < rounds; r++ {
			ec, ew := runTimed(t, w.inputs, engine)
			bc, bw := runTimed(t, w.inputs, vips)
			ecpu, bcpu = append(ecpu, ec), append(bcpu, bc)
			t.Logf("%-10s round %d: engine %6.2f ms CPU/img (%5.1f img/s)   bimg %6.2f ms CPU/img (%5.1f img/s)",
				w.name, r+1, ec, ew, bc, bw)
		}
		t.Logf("%-10s median of %d rounds x %d images: engine %.2f ms, bimg %.2f ms, engine/bimg %.2f",
			w.name, rounds, w.n, median(ecpu), median(bcpu), median(ecpu)/median(bcpu))
	}
}

// runTimed processes every input on two goroutines and returns CPU ms per image
// and images per second.
func runTimed(t *testing.T, inputs [][]byte, f func([]byte) error) (float64, float64) {
	runtime.GC()
	work := make(chan []byte)
	var wg sync.WaitGroup
	var once sync.Once
	cpu0, start := cpuTime(), time.Now()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				if err := f(d); err != nil {
					once.Do(func() { t.Error(err) })
				}
			}
		}()
	}
	for _, d := range inputs {
		work <- d
	}
	close(work)
	wg.Wait()
	n := float64(len(inputs))
	return float64((cpuTime() - cpu0).Microseconds()) / 1000 / n, n / time.Since(start).Seconds()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func envInt(key string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(key)); err == nil && n > 0 {
		return n
	}
	return def
}
