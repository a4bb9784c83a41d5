package transform

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/h2non/bimg"
)

// photoLike is a noisy gradient: JPEG-coded like a photo (flat colours
// would make decoding unrealistically cheap).
func photoLike(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			n := uint8(r.IntN(24))
			img.SetRGBA(x, y, color.RGBA{uint8(x*255/w) + n, uint8(y*255/h) + n, uint8((x+y)*127/(w+h)) + n, 255})
		}
	}
	return img
}

var benchInputs = sync.OnceValues(func() ([]byte, []byte) {
	enc := func(img image.Image) []byte {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
			panic(err)
		}
		return b.Bytes()
	}
	return enc(photoLike(640, 480)), enc(photoLike(3840, 2160))
})

// cpuPerOp reports CPU time per operation (user+system, libvips' own
// threads included) beside the wall-clock ns/op: what an image costs,
// whatever the waiting between threads.
func cpuPerOp(b *testing.B, f func()) {
	start := cpuTime()
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// The pipeline against bare bimg on the lead's two benchmark shapes.
func BenchmarkSmallJPEGThumb(b *testing.B) {
	small, _ := benchInputs()
	e := testEngine(b)
	s := spec(b, e, "width=160&height=160&fit=cover&format=jpeg&quality=80")
	b.Run("pipeline", func(b *testing.B) {
		cpuPerOp(b, func() {
			if _, _, err := e.Process(context.Background(), Input{Data: small, Spec: s}); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("bimg", func(b *testing.B) {
		cpuPerOp(b, func() {
			if _, err := bimg.Resize(small, bimg.Options{Width: 160, Height: 160, Crop: true, Type: bimg.JPEG, Quality: 80, StripMetadata: true}); err != nil {
				b.Fatal(err)
			}
		})
	})
}

func Benchmark4KToWebP(b *testing.B) {
	_, big := benchInputs()
	e := testEngine(b)
	s := spec(b, e, "width=800&height=600&fit=inside&format=webp")
	b.Run("pipeline", func(b *testing.B) {
		cpuPerOp(b, func() {
			if _, _, err := e.Process(context.Background(), Input{Data: big, Spec: s}); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("bimg", func(b *testing.B) {
		cpuPerOp(b, func() {
			if _, err := bimg.Resize(big, bimg.Options{Width: 800, Height: 600, Type: bimg.WEBP, Quality: 80, StripMetadata: true}); err != nil {
				b.Fatal(err)
			}
		})
	})
}
