package apptest

import (
	"bytes"
	"image"
	_ "image/gif"  // register decoders: results are checked with Go's own
	_ "image/jpeg" // decoders, independent of the libvips that made them
	_ "image/png"
	"testing"

	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// Decode fully decodes an image with Go's decoders and returns its format
// name (jpeg, png, gif, webp, tiff) and the image.
func Decode(t testing.TB, data []byte) (string, image.Image) {
	t.Helper()
	img, format, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("result does not decode: %v (%d bytes, starts %.16q)", err, len(data), data)
	}
	return format, img
}
