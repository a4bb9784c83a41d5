package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// writeImages makes the workload's images, each different, into dir: once
// per run, so that every round of every phase reads the same bytes and no
// child spends its time encoding test images.
func writeImages(w workload, dir string) error {
	for i := range w.Count {
		data := fixtures.JPEG(w.Width, w.Height, uint64(i)+1)
		if err := os.WriteFile(imagePath(dir, i), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// readImages loads them back, before a phase's clock starts.
func readImages(w workload, dir string) ([][]byte, error) {
	out := make([][]byte, w.Count)
	for i := range out {
		var err error
		if out[i], err = os.ReadFile(imagePath(dir, i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func imagePath(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("%05d.jpg", i))
}
