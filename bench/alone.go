package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"

	"github.com/h2non/bimg"

	"github.com/imgpipe/imgpipe/roles"
	"github.com/imgpipe/imgpipe/transform"
)

// The two ceilings the pipeline is compared with, each the same transform
// on the same images with no HTTP, no bus and no disk: bimg alone (the
// target's "libvips alone") and imgpipe's own engine alone. The second
// splits the gap: engine against bimg is what the transform itself costs,
// pipeline against engine is what carrying an image through the system
// costs.

func numCPU() int { return runtime.NumCPU() }

// runVips is bimg in a tight loop. libvips keeps no operation cache and,
// as in the pipeline's engine, runs without ORC: on Debian 12's libvips
// 8.14 and liborc 0.4.33, one thread compiling an ORC program while
// another frees one corrupts liborc's code memory (transform/
// vips_startup.c), and this phase crashed in `make bench` so (SIGSEGV in
// g_object_unref, under bimg's save). ORC made libvips about 5% faster.
func runVips(w workload, images [][]byte) error {
	bimg.VipsCacheSetMax(0)
	bimg.VipsVectorSetEnabled(false)
	opts := bimg.Options{Width: w.OutWidth, Height: w.OutHeight, Crop: w.Crop, Quality: 80, StripMetadata: true}
	switch w.Format {
	case "jpeg":
		opts.Type = bimg.JPEG
	case "webp":
		opts.Type = bimg.WEBP
	}
	return eachImage(images, func(img []byte) error {
		out, err := bimg.NewImage(img).Process(opts)
		if err == nil && len(out) == 0 {
			err = fmt.Errorf("empty output")
		}
		return err
	})
}

// runEngine is transform.Engine, as the transform role calls it, with the
// workload's spec and the default configuration.
func runEngine(w workload, images [][]byte) error {
	eng, err := transform.New(transform.DefaultConfig(), slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer eng.Close()
	req, err := eng.ParseRequestString(w.Spec)
	if err != nil {
		return err
	}
	if len(req.Variants) != 1 {
		return fmt.Errorf("spec %q makes %d variants, want 1", w.Spec, len(req.Variants))
	}
	spec := req.Variants[0].Spec
	return eachImage(images, func(img []byte) error {
		out, _, err := eng.Process(context.Background(), transform.Input{Data: img, Spec: spec})
		if err == nil && len(out) == 0 {
			err = fmt.Errorf("empty output")
		}
		return err
	})
}

// eachImage runs f on every image from as many goroutines as the pipeline
// has transform workers (two per core: one per core leaves a quarter of
// the CPU idle while each waits on its libvips thread, and the pipeline
// would then be compared with a slow baseline). It returns the first error.
func eachImage(images [][]byte, f func([]byte) error) error {
	work := make(chan []byte)
	errs := make(chan error, len(images))
	var wg sync.WaitGroup
	for range roles.DefaultConfig().TransformWorkers {
		wg.Go(func() {
			for img := range work {
				if err := f(img); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, img := range images {
		work <- img
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}
