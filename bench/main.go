// Command bench measures the whole pipeline against libvips alone on the
// same images in the same run: `make bench`.
//
// Each phase runs in a child process of its own so that its peak RSS is its
// own: "vips" resizes the images with bimg in a tight loop on every core;
// "engine" does the same with imgpipe's transform.Engine; "pipeline" starts
// imgpipe dev (embedded NATS, local store, all roles) in process and pushes
// the images through the HTTP API until every result is served and every
// image is persisted. The parent generates each set's images once and runs
// -rounds rounds of the three phases, in turn, and prints medians: on a
// shared VM one run of any can be a fifth off.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strings"
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

func (r phaseResult) rate() float64 { return float64(r.Images) / r.Seconds }

// cpuPerImage is in milliseconds.
func (r phaseResult) cpuPerImage() float64 { return 1000 * r.CPUSeconds / float64(r.Images) }

func main() {
	phase := flag.String("phase", "", "internal: run one phase (vips, engine or pipeline) in this process")
	name := flag.String("workload", "", "internal: the workload of the phase")
	dir := flag.String("images", "", "internal: the folder holding the workload's images")
	// 400 small images took under a second a phase, and the machine's
	// speed swings on that scale: one run's rounds gave ratios from 0.66
	// to 1.28. 2000 take three or four seconds; of two runs of five
	// rounds (of the code of the day), all rounds but one fell within
	// 0.77-0.84.
	small := flag.Int("small", 2000, "number of small images")
	large := flag.Int("large", 40, "number of large images")
	rounds := flag.Int("rounds", 5, "rounds per set, each timing bimg alone, the engine alone, then the pipeline; medians are printed")
	profile := flag.String("cpuprofile", "", "internal: write the phase's CPU profile here")
	flag.Parse()
	workloads[0].Count, workloads[1].Count = *small, *large

	if *phase != "" {
		res, err := runPhase(*phase, find(*name), *dir, *profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		_ = json.NewEncoder(os.Stdout).Encode(res)
		pprof.StopCPUProfile()
		return
	}

	fmt.Printf("imgpipe bench: %d cores; bimg alone (vips) and imgpipe's engine alone (eng) run %d goroutines, as many as the pipeline's transform workers;\n"+
		"the pipeline is all roles in one process on embedded NATS and the local store.\n"+
		"Each set runs %d rounds (bimg alone, the engine alone, then the pipeline, each in a fresh process); medians, and peak RSS at most.\n\n",
		numCPU(), roles.DefaultConfig().TransformWorkers, *rounds)
	fmt.Printf("%-6s %6s  %10s  %10s  %10s  %6s  %11s  %11s  %15s  %15s  %15s  %9s  %9s  %s\n", "set", "images",
		"vips img/s", "eng img/s", "pipe img/s", "ratio", "pipe/engine", "persisted/s",
		"vips CPU ms/img", "eng CPU ms/img", "pipe CPU ms/img", "vips RSS", "pipe RSS", "ratio by round")
	for _, w := range workloads {
		if w.Count == 0 {
			continue
		}
		if err := benchSet(w, max(*rounds, 1)); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	fmt.Println("\nratio = pipeline images/s (upload to result served) / libvips alone (bimg) images/s, in the same round; target ≥ 0.85")
	fmt.Println("pipe/engine = pipeline images/s / imgpipe's engine alone images/s: what carrying images through the system costs")
}

// benchSet times one workload: each round runs the three phases in turn,
// so a slow spell of a shared machine weighs on every side of a ratio.
func benchSet(w workload, rounds int) error {
	dir, err := os.MkdirTemp("", "imgpipe-bench-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(os.Stderr, "generating %d %dx%d JPEGs\n", w.Count, w.Width, w.Height)
	if err := writeImages(w, dir); err != nil {
		return err
	}
	var vipsRate, engRate, pipeRate, ratio, ofEngine, persisted, vipsCPU, engCPU, pipeCPU []float64
	var vipsRSS, pipeRSS int64
	var byRound []string
	for range rounds {
		vips, err := child("vips", w, dir)
		if err != nil {
			return err
		}
		eng, err := child("engine", w, dir)
		if err != nil {
			return err
		}
		pipe, err := child("pipeline", w, dir)
		if err != nil {
			return err
		}
		vr, er, pr := vips.rate(), eng.rate(), pipe.rate()
		vipsRate, engRate, pipeRate = append(vipsRate, vr), append(engRate, er), append(pipeRate, pr)
		ratio, ofEngine = append(ratio, pr/vr), append(ofEngine, pr/er)
		persisted = append(persisted, float64(pipe.Images)/pipe.PersistSeconds)
		vipsCPU, engCPU, pipeCPU = append(vipsCPU, vips.cpuPerImage()), append(engCPU, eng.cpuPerImage()), append(pipeCPU, pipe.cpuPerImage())
		vipsRSS, pipeRSS = max(vipsRSS, vips.PeakRSSKiB), max(pipeRSS, pipe.PeakRSSKiB)
		byRound = append(byRound, fmt.Sprintf("%.2f", pr/vr))
	}
	fmt.Printf("%-6s %6d  %10.1f  %10.1f  %10.1f  %6.2f  %11.2f  %11.1f  %15.2f  %15.2f  %15.2f  %5d MiB  %5d MiB  %s\n", w.Name, w.Count,
		median(vipsRate), median(engRate), median(pipeRate), median(ratio), median(ofEngine), median(persisted),
		median(vipsCPU), median(engCPU), median(pipeCPU), vipsRSS>>10, pipeRSS>>10, strings.Join(byRound, " "))
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
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
func child(phase string, w workload, dir string) (phaseResult, error) {
	cmd := exec.Command(os.Args[0], "-phase", phase, "-workload", w.Name, "-images", dir,
		fmt.Sprint("-small=", workloads[0].Count), fmt.Sprint("-large=", workloads[1].Count))
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

// runPhase times one phase on the images in dir (written by the parent),
// or on images generated here when run by hand without -images.
func runPhase(phase string, w workload, dir, profile string) (phaseResult, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "imgpipe-bench-images-"); err != nil {
			return phaseResult{}, err
		}
		defer os.RemoveAll(dir)
		if err := writeImages(w, dir); err != nil {
			return phaseResult{}, err
		}
	}
	images, err := readImages(w, dir)
	if err != nil {
		return phaseResult{}, err
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	cpu0 := cpuSeconds()
	start := time.Now()
	var res phaseResult
	switch phase {
	case "vips", "engine":
		run := runVips
		if phase == "engine" {
			run = runEngine
		}
		err = run(w, images)
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
