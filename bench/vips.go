package main

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/h2non/bimg"

	"github.com/imgpipe/imgpipe/roles"
)

func numCPU() int { return runtime.NumCPU() }

// runVips is the ceiling: bimg alone, as many goroutines pulling images off
// a channel as the pipeline has transform workers (two per core: one per
// core leaves a quarter of the CPU idle while each waits on its libvips
// thread, and the pipeline would then be compared with a slow baseline),
// the same transform as the pipeline's spec, no HTTP, no bus, no disk.
// libvips runs one thread per operation and keeps no operation cache, as in
// the pipeline's engine.
func runVips(w workload, images [][]byte) error {
	bimg.VipsCacheSetMax(0)
	opts := bimg.Options{Width: w.OutWidth, Height: w.OutHeight, Crop: w.Crop, Quality: 80, StripMetadata: true}
	switch w.Format {
	case "jpeg":
		opts.Type = bimg.JPEG
	case "webp":
		opts.Type = bimg.WEBP
	}
	work := make(chan []byte)
	errs := make(chan error, len(images))
	var wg sync.WaitGroup
	for range roles.DefaultConfig().TransformWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for img := range work {
				out, err := bimg.NewImage(img).Process(opts)
				if err == nil && len(out) == 0 {
					err = fmt.Errorf("empty output")
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, img := range images {
		work <- img
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}
