package transform

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/h2non/bimg"
)

// TestMemoryLargeJPEG measures peak RSS while turning a 6000x4000 JPEG into
// an 800x600 WebP (docs/transform.md quotes it). It is slow and wants a
// quiet process, so it only runs when asked:
//
//	IMGPIPE_MEMTEST=1 go test -run TestMemoryLargeJPEG -v ./transform/
//
// The fixture is made first; then the kernel's peak-RSS mark is reset
// (/proc/self/clear_refs) so that the peak reported is the pipeline's.
func TestMemoryLargeJPEG(t *testing.T) {
	if os.Getenv("IMGPIPE_MEMTEST") == "" {
		t.Skip("set IMGPIPE_MEMTEST=1 to measure memory")
	}
	data := encJPEG(t, photoLike(6000, 4000))
	e := testEngine(t, func(c *Config) {
		if n, err := strconv.Atoi(os.Getenv("IMGPIPE_MEMTEST_CONCURRENCY")); err == nil {
			c.VipsConcurrency = n
		}
	})
	s := spec(t, e, "width=800&height=600&fit=inside&format=webp")
	t.Logf("input: 6000x4000 JPEG, %.1f MiB; MALLOC_ARENA_MAX=%q, vips concurrency %d",
		float64(len(data))/(1<<20), os.Getenv("MALLOC_ARENA_MAX"), e.cfg.VipsConcurrency)

	measure := func(name string, n int, fn func()) {
		runtime.GC()
		debug.FreeOSMemory()
		base := resetPeakRSS(t)
		start := time.Now()
		for i := 0; i < n; i++ {
			fn()
		}
		took := time.Since(start) / time.Duration(n)
		t.Logf("%-28s runs %2d  %6.0f ms/op  RSS before %4d MiB  peak %4d MiB  (+%d)  after %4d MiB",
			name, n, float64(took.Microseconds())/1000, base>>20, peakRSS(t)>>20, (peakRSS(t)-base)>>20, currentRSS(t)>>20)
	}
	measure("pipeline (shrink-on-load)", 1, func() {
		if _, _, err := e.Process(context.Background(), Input{Data: data, Spec: s}); err != nil {
			t.Fatal(err)
		}
	})
	measure("pipeline, 20 more", 20, func() {
		if _, _, err := e.Process(context.Background(), Input{Data: data, Spec: s}); err != nil {
			t.Fatal(err)
		}
	})
	measure("pipeline, 2 workers x 10", 1, func() {
		var wg sync.WaitGroup
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					if _, _, err := e.Process(context.Background(), Input{Data: data, Spec: s}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
	measure("pipeline, extract+resize", 1, func() {
		if _, _, err := e.Process(context.Background(), Input{Data: data, Spec: spec(t, e, "extract=1000,1000,4000,2000&width=800&format=webp")}); err != nil {
			t.Fatal(err)
		}
	})
	measure("pipeline, no resize, rot90", 1, func() {
		if _, _, err := e.Process(context.Background(), Input{Data: data, Spec: spec(t, e, "format=jpeg&rotate=90")}); err != nil {
			t.Fatal(err)
		}
	})
	measure("bimg.Resize", 1, func() {
		if _, err := bimg.Resize(data, bimg.Options{Width: 800, Height: 600, Type: bimg.WEBP, Quality: 80}); err != nil {
			t.Fatal(err)
		}
	})
}

func resetPeakRSS(t *testing.T) int64 {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset peak RSS: %v", err)
	}
	return currentRSS(t)
}

func peakRSS(t *testing.T) int64    { return procStatus(t, "VmHWM:") }
func currentRSS(t *testing.T) int64 { return procStatus(t, "VmRSS:") }

func procStatus(t *testing.T, key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("%s not in /proc/self/status", key)
	return 0
}
