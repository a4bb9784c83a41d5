package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/imgpipe/imgpipe/app"
)

// uploaders is how many clients post at once, and as many fetch results:
// enough to keep every transformer fed while uploads of the next images
// are in flight.
const uploaders = 8

// client keeps a connection per uploader alive between requests, as a
// load balancer in front of the API would. http.DefaultTransport keeps
// two per host: the other uploaders would dial a new connection, and the
// server accept it, for nearly every image.
var client = &http.Client{Transport: func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = uploaders
	return t
}()}

// runPipeline starts imgpipe dev in this process and pushes the images
// through it: upload all, fetching every result as it is served, then wait
// for save2db to have persisted every image.
func runPipeline(w workload, images [][]byte) (phaseResult, error) {
	dir, err := os.MkdirTemp("", "imgpipe-bench-")
	if err != nil {
		return phaseResult{}, err
	}
	defer os.RemoveAll(dir)
	cfg := app.DefaultConfig()
	cfg.Embedded, cfg.DataDir, cfg.HTTP.Listen = true, dir, "127.0.0.1:0"
	a := app.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-done:
		cancel()
		return phaseResult{}, err
	}
	defer func() { cancel(); <-done }()
	base := "http://" + a.Addr().String()

	// Redrawn in place on a terminal; in a log it would be a line per image.
	bar := progressbar.NewOptions(len(images), progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetVisibility(term.IsTerminal(int(os.Stderr.Fd()))),
		progressbar.OptionSetDescription(w.Name+" pipeline"), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	// Uploaders post; as many fetchers take each result as soon as it is
	// uploaded, long-polling until it is served: many clients at once, as
	// in front of a real deployment. (Fetched one by one after the last
	// upload, the results were a serial tail of the bench's own making.)
	start := time.Now()
	errs := make(chan error, 2*len(images))
	work, uploaded := make(chan int), make(chan string, len(images))
	var up, down sync.WaitGroup
	for range uploaders {
		up.Go(func() {
			for i := range work {
				id, err := post(base, w.Spec, images[i])
				if err != nil {
					errs <- err
					continue
				}
				uploaded <- id
			}
		})
		down.Go(func() {
			for id := range uploaded {
				if err := fetch(base, id); err != nil {
					errs <- err
				}
				_ = bar.Add(1)
			}
		})
	}
	for i := range images {
		work <- i
	}
	close(work)
	up.Wait()
	close(uploaded)
	down.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return phaseResult{}, err
	}
	elapsed := time.Since(start)
	if err := waitPersisted(base, len(images)); err != nil {
		return phaseResult{}, err
	}
	return phaseResult{Images: len(images), Seconds: elapsed.Seconds(), PersistSeconds: time.Since(start).Seconds()}, nil
}

func post(base, spec string, data []byte) (string, error) {
	resp, err := client.Post(base+"/v1/images?"+spec, "image/jpeg", bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("upload: %d %s", resp.StatusCode, body)
	}
	_, rest, _ := strings.Cut(string(body), `"id":"`)
	id, _, _ := strings.Cut(rest, `"`)
	return id, nil
}

func fetch(base, id string) error {
	for {
		resp, err := client.Get(base + "/v1/images/" + id + "/result?wait=30s")
		if err != nil {
			return err
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK && n > 0:
			return nil
		case resp.StatusCode != http.StatusAccepted:
			return fmt.Errorf("result %s: %d", id, resp.StatusCode)
		}
	}
}

// waitPersisted reads save2db's counter from /metrics until it reaches n.
func waitPersisted(base string, n int) error {
	want := fmt.Sprintf(`imgpipe_messages_handled_total{outcome="saved",role="save2db"} %d`, n)
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), want) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("save2db did not persist %d images within 5 minutes", n)
}
