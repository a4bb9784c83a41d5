package app_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image/color"
	"image/gif"
	"image/png"
	"net/http"
	"net/url"
	"testing"

	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// The transformation engine through the whole pipeline: variants, a stored
// image as watermark, animation and EXIF orientation.
func TestOperationsThroughThePipeline(t *testing.T) {
	r := apptest.Start(t, apptest.Config(t))

	t.Run("presets-and-variants", func(t *testing.T) {
		spec := "preset=thumb,preview&variant=" + url.QueryEscape("tiny:width=40;height=30;fit=fill;format=png")
		id := upload(t, r.URL, spec, fixtures.JPEG(1200, 900, 31))
		waitOK(t, r.URL, id)
		want := map[string][3]any{"thumb": {"webp", 200, 200}, "preview": {"webp", 800, 600}, "tiny": {"png", 40, 30}}
		var rec struct {
			Results []struct {
				Variant, Format string
				Width, Height   int
			}
		}
		_ = json.Unmarshal(apptest.Get(t, r.URL+"/v1/images/"+id).Body, &rec)
		if len(rec.Results) != len(want) {
			t.Fatalf("record lists %d variants: %+v", len(rec.Results), rec.Results)
		}
		for name, w := range want {
			res := apptest.Get(t, r.URL+"/v1/images/"+id+"/result?variant="+name)
			if res.Status != http.StatusOK {
				t.Fatalf("variant %s: %d %s", name, res.Status, res.Body)
			}
			format, img := apptest.Decode(t, res.Body)
			if format != w[0] || img.Bounds().Dx() != w[1] || img.Bounds().Dy() != w[2] {
				t.Errorf("variant %s: %s %v, want %v", name, format, img.Bounds().Size(), w)
			}
		}
		if res := apptest.Get(t, r.URL+"/v1/images/"+id+"/result?variant=huge"); res.Status != http.StatusNotFound {
			t.Errorf("unknown variant: %d", res.Status)
		}
	})

	t.Run("watermark-image-by-id", func(t *testing.T) {
		var mark bytes.Buffer
		_ = png.Encode(&mark, fixtures.Solid(40, 40, color.RGBA{255, 0, 0, 255}))
		markID := upload(t, r.URL, "format=png", mark.Bytes())
		waitOK(t, r.URL, markID)
		var base bytes.Buffer
		_ = png.Encode(&base, fixtures.Solid(400, 300, color.White))
		id := upload(t, r.URL, "format=png&watermark_image="+markID+"&watermark_position=southeast&watermark_opacity=1", base.Bytes())
		_, img := apptest.Decode(t, waitOK(t, r.URL, id).Body)
		red := func(x, y int) bool {
			r, g, b, _ := img.At(x, y).RGBA()
			return r>>8 > 200 && g>>8 < 60 && b>>8 < 60
		}
		if !red(400-9-20, 300-9-20) {
			t.Errorf("no red mark near the bottom-right corner: %v", img.At(371, 271))
		}
		if red(20, 20) || red(200, 150) {
			t.Error("mark outside the south-east corner")
		}
	})

	t.Run("animation-kept", func(t *testing.T) {
		anim := fixtures.GIF(120, 80, 5, 40)
		id := upload(t, r.URL, "width=60&format=gif", anim)
		g, err := gif.DecodeAll(bytes.NewReader(waitOK(t, r.URL, id).Body))
		if err != nil || len(g.Image) != 5 || g.Config.Width != 60 || g.Config.Height != 40 {
			t.Fatalf("gif result: err %v, %d frames, %dx%d", err, len(g.Image), g.Config.Width, g.Config.Height)
		}
		id = upload(t, r.URL, "width=60&format=webp", anim)
		if n := webpFrames(waitOK(t, r.URL, id).Body); n != 5 {
			t.Errorf("webp result has %d frames, want 5", n)
		}
		id = upload(t, r.URL, "width=60&format=jpeg", anim)
		if format, img := apptest.Decode(t, waitOK(t, r.URL, id).Body); format != "jpeg" || img.Bounds().Dx() != 60 {
			t.Errorf("first frame as jpeg: %s %v", format, img.Bounds())
		}
		info := apptest.Get(t, r.URL+"/v1/images/"+id).JSON(t)["original"].(map[string]any)
		if info["animated"] != true || info["pages"].(float64) != 5 {
			t.Errorf("original info: %v", info)
		}
	})

	t.Run("exif-orientation", func(t *testing.T) {
		// Stored 400x200 with orientation 6: shown 200x400.
		id := upload(t, r.URL, "width=100&format=png", fixtures.WithOrientation(fixtures.JPEG(400, 200, 50), 6))
		_, img := apptest.Decode(t, waitOK(t, r.URL, id).Body)
		if img.Bounds().Dx() != 100 || img.Bounds().Dy() != 200 {
			t.Fatalf("result %v, want upright 100x200", img.Bounds().Size())
		}
		info := apptest.Get(t, r.URL+"/v1/images/"+id).JSON(t)["original"].(map[string]any)
		if info["orientation"].(float64) != 6 || info["color_space"] == "" {
			t.Errorf("original info: %v", info)
		}
	})

	t.Run("global-activity-feed", func(t *testing.T) {
		var feed struct {
			Events []struct {
				ImageID string `json:"image_id"`
			}
		}
		apptest.Eventually(t, "the global feed", func() bool {
			_ = json.Unmarshal(apptest.Get(t, r.URL+"/v1/activity?limit=5").Body, &feed)
			return len(feed.Events) == 5
		})
		if resp := apptest.Get(t, r.URL+"/v1/activity?limit=-1"); resp.Status != http.StatusBadRequest {
			t.Errorf("bad limit: %d", resp.Status)
		}
	})
}

// webpFrames counts the ANMF chunks of an animated WebP (0 for a still).
func webpFrames(b []byte) int {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return -1
	}
	n := 0
	for p := 12; p+8 <= len(b); {
		size := int(binary.LittleEndian.Uint32(b[p+4:]))
		if string(b[p:p+4]) == "ANMF" {
			n++
		}
		p += 8 + size + size%2
	}
	return n
}
