// Command bench measures the whole pipeline against libvips alone on the
// same images in the same run: `make bench`.
//
// Each phase runs in a child process of its own so that its peak RSS is its
// own: "vips" resizes the images with bimg in a tight loop on every core;
// "pipeline" starts imgpipe dev (embedded NATS, local store, all roles) in
// process and pushes the images through the HTTP API until every result is
// served and every image is persisted.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/imgpipe/imgpipe/roles"
)

// workload is one image set and the transform applied to it.
type workload struct {
	Name          string
	Count         int
	Width, Height int    // of the generated JPEGs
	Spec          string // for the pipeline
	// The same transform for bimg alone.
	OutWidth, OutHeight int
	Crop                bool
	Format              string
}

var workloads = []workload{
	{Name: "small", Width: 640, Height: 480, Spec: "width=160&height=160&fit=cover&format=jpeg&quality=80", OutWidth: 160, OutHeight: 160, Crop: true, Format: "jpeg"},
	{Name: "large", Width: 3840, Height: 2160, Spec: "width=800&height=600&fit=inside&format=webp&quality=80", OutWidth: 800, OutHeight: 600, Format: "webp"},
}

// phaseResult is what a child phase reports on stdout.
type phaseResult struct {
	Images  int     `json:"images"`
	Seconds float64 `json:"seconds"`
	// PersistSeconds is until save2db has stored every image (pipeline only).
	PersistSeconds float64 `json:"persist_seconds,omitempty"`
	PeakRSSKiB     int64   `json:"peak_rss_kib"`
	// CPUSeconds is user+system time of the timed part, all threads
	// (libvips' own included): what the images cost, whatever the wait.
	CPUSeconds float64 `json:"cpu_seconds"`
}

func main() {
	phase := flag.String("phase", "", "internal: run one phase (vips or pipeline) in this process")
	name := flag.String("workload", "", "internal: the workload of the phase")
	small := flag.Int("small", 400, "number of small images")
	large := flag.Int("large", 40, "number of large images")
	profile := flag.String("cpuprofile", "", "internal: write the phase's CPU profile here")
	flag.Parse()
	workloads[0].Count, workloads[1].Count = *small, *large

	if *phase != "" {
		w := find(*name)
		w.Count = map[string]int{"small": *small, "large": *large}[w.Name]
		res, err := runPhase(*phase, w, *profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		_ = json.NewEncoder(os.Stdout).Encode(res)
		pprof.StopCPUProfile()
		return
	}

	fmt.Printf("imgpipe bench: %d cores; vips alone runs %d goroutines, as many as the pipeline's transform workers;\n"+
		"the pipeline is all roles in one process on embedded NATS and the local store\n\n", numCPU(), roles.DefaultConfig().TransformWorkers)
	fmt.Printf("%-6s %6s  %10s  %10s  %6s  %11s  %13s  %13s  %9s  %9s\n", "set", "images", "vips img/s", "pipe img/s", "ratio", "persisted/s", "vips CPU ms/img", "pipe CPU ms/img", "vips RSS", "pipe RSS")
	for _, w := range workloads {
		vips, err := child("vips", w, *small, *large)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		pipe, err := child("pipeline", w, *small, *large)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		vr := float64(vips.Images) / vips.Seconds
		pr := float64(pipe.Images) / pipe.Seconds
		fmt.Printf("%-6s %6d  %10.1f  %10.1f  %6.2f  %11.1f  %15.2f  %15.2f  %5d MiB  %5d MiB\n", w.Name, w.Count, vr, pr, pr/vr,
			float64(pipe.Images)/pipe.PersistSeconds, 1000*vips.CPUSeconds/float64(vips.Images), 1000*pipe.CPUSeconds/float64(pipe.Images),
			vips.PeakRSSKiB>>10, pipe.PeakRSSKiB>>10)
	}
	fmt.Println("\nratio = pipeline images/s (upload to result served) / libvips alone images/s; target ≥ 0.85")
}

func find(name string) workload {
	for _, w := range workloads {
		if w.Name == name {
			return w
		}
	}
	fmt.Fprintln(os.Stderr, "bench: unknown workload", name)
	os.Exit(2)
	return workload{}
}

// child runs one phase in a fresh process and reads its result and peak RSS.
func child(phase string, w workload, small, large int) (phaseResult, error) {
	cmd := exec.Command(os.Args[0], "-phase", phase, "-workload", w.Name, fmt.Sprint("-small=", small), fmt.Sprint("-large=", large))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return phaseResult{}, fmt.Errorf("%s/%s: %w", phase, w.Name, err)
	}
	var res phaseResult
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("%s/%s: %w: %s", phase, w.Name, err, out)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.PeakRSSKiB = ru.Maxrss
	}
	return res, nil
}

func runPhase(phase string, w workload, profile string) (phaseResult, error) {
	images := generate(w)
	if profile != "" {
		f, err := os.Create(profile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	cpu0 := cpuSeconds()
	start := time.Now()
	var res phaseResult
	var err error
	switch phase {
	case "vips":
		err = runVips(w, images)
		res = phaseResult{Images: len(images), Seconds: time.Since(start).Seconds()}
	case "pipeline":
		res, err = runPipeline(w, images)
	default:
		err = fmt.Errorf("unknown phase %q", phase)
	}
	res.CPUSeconds = cpuSeconds() - cpu0
	return res, err
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
