package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
	"github.com/imgpipe/imgpipe/model"
)

// TestPipelineEndToEnd pushes real images of every input format through all
// five roles in one process and checks each result by decoding it.
func TestPipelineEndToEnd(t *testing.T) {
	r := apptest.Start(t, apptest.Config(t))

	// A WebP input is made by the pipeline itself from a PNG, then fed back.
	webp := waitOK(t, r.URL, upload(t, r.URL, "format=webp&width=320", fixtures.PNG(640, 480, 7, false))).Body

	cases := []struct {
		name         string
		data         []byte
		spec         string
		format       string
		width, hight int
	}{
		{"jpeg", fixtures.JPEG(640, 480, 1), "width=200&height=200&format=png", "png", 200, 150},
		{"png-alpha", fixtures.PNG(300, 200, 2, true), "width=150&format=webp", "webp", 150, 100},
		{"webp", webp, "width=160&format=jpeg", "jpeg", 160, 120},
		{"gif", fixtures.GIF(120, 80, 1, 3), "width=60&format=gif", "gif", 60, 40},
		{"tiny", fixtures.PNG(1, 1, 4, false), "width=100&format=png", "png", 1, 1},
		{"extreme-aspect", fixtures.JPEG(4000, 20, 5), "width=400&format=jpeg", "jpeg", 400, 2},
		{"default-spec", fixtures.JPEG(2000, 1000, 6), "", "webp", 1600, 800},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := upload(t, r.URL, tc.spec, tc.data)
			res := waitOK(t, r.URL, id)
			if ct := res.Header.Get("Content-Type"); ct != "image/"+tc.format {
				t.Errorf("Content-Type %q, want image/%s", ct, tc.format)
			}
			if res.Header.Get("ETag") == "" {
				t.Error("result has no ETag")
			}
			format, img := apptest.Decode(t, res.Body)
			if format != tc.format || img.Bounds().Dx() != tc.width || img.Bounds().Dy() != tc.hight {
				t.Fatalf("result is %s %dx%d, want %s %dx%d", format, img.Bounds().Dx(), img.Bounds().Dy(), tc.format, tc.width, tc.hight)
			}
			if tc.name == "png-alpha" {
				// The left half of the fixture is transparent: it must stay so.
				if _, _, _, a := img.At(5, 50).RGBA(); a != 0 {
					t.Errorf("alpha lost: pixel (5,50) has alpha %d", a>>8)
				}
				if _, _, _, a := img.At(140, 50).RGBA(); a != 0xffff {
					t.Errorf("opaque half has alpha %d", a>>8)
				}
			}
			// HEAD answers as GET, without the body.
			head := apptest.Do(t, http.MethodHead, r.URL+"/v1/images/"+id+"/result", "", nil)
			if head.Status != http.StatusOK || len(head.Body) != 0 || head.Header.Get("ETag") != res.Header.Get("ETag") ||
				head.Header.Get("Content-Type") != "image/"+tc.format || head.Header.Get("Content-Length") != strconv.Itoa(len(res.Body)) {
				t.Errorf("HEAD result: %d, %d body bytes, headers %v", head.Status, len(head.Body), head.Header)
			}
			orig := apptest.Get(t, r.URL+"/v1/images/"+id+"/original")
			if orig.Status != http.StatusOK || !bytes.Equal(orig.Body, tc.data) {
				t.Fatalf("original: status %d, %d bytes, identical=%v", orig.Status, len(orig.Body), bytes.Equal(orig.Body, tc.data))
			}
			// Caches may send a list, weak tags or a star.
			for _, inm := range []string{"W/" + res.Header.Get("ETag"), "*", `"x", ` + res.Header.Get("ETag")} {
				req, _ := http.NewRequest(http.MethodGet, r.URL+"/v1/images/"+id+"/result", nil)
				req.Header.Set("If-None-Match", inm)
				cached, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				cached.Body.Close()
				if cached.StatusCode != http.StatusNotModified {
					t.Errorf("If-None-Match %s: %d, want 304", inm, cached.StatusCode)
				}
			}
			// A HEAD takes the length from the record, not the bytes.
			head = apptest.Do(t, http.MethodHead, r.URL+"/v1/images/"+id+"/original", "", nil)
			if head.Status != http.StatusOK || len(head.Body) != 0 || head.Header.Get("ETag") != orig.Header.Get("ETag") ||
				head.Header.Get("Content-Type") != orig.Header.Get("Content-Type") || head.Header.Get("Content-Length") != strconv.Itoa(len(tc.data)) {
				t.Errorf("HEAD original: %d, %d body bytes, headers %v", head.Status, len(head.Body), head.Header)
			}
			info := apptest.Get(t, r.URL+"/v1/images/"+id).JSON(t)
			if info["status"] != "done" || info["result"] == nil {
				t.Fatalf("record: %v", info)
			}
			o := info["original"].(map[string]any)
			if o["size"].(float64) != float64(len(tc.data)) || o["sha256"] == "" || o["width"].(float64) == 0 {
				t.Errorf("original info: %v", o)
			}
		})
	}

	t.Run("activity", func(t *testing.T) {
		id := upload(t, r.URL, "width=10", fixtures.JPEG(64, 64, 99))
		waitOK(t, r.URL, id)
		roles := map[string]bool{}
		apptest.Eventually(t, "activity from api, transform and save2db", func() bool {
			var body struct {
				Events []struct{ Role, Event, Instance string }
			}
			_ = json.Unmarshal(apptest.Get(t, r.URL+"/v1/images/"+id+"/activity").Body, &body)
			for _, e := range body.Events {
				roles[e.Role+":"+e.Event] = true
			}
			return roles["api:accepted"] && roles["transform:transform.done"] && roles["save2db:saved"]
		})
		// The timeline reads in order: accepted is dated when the image
		// was created, before any worker could start on it.
		created, _ := time.Parse(time.RFC3339Nano, apptest.Get(t, r.URL+"/v1/images/"+id).JSON(t)["created_at"].(string))
		at := map[string]time.Time{}
		for _, e := range activity(t, r.URL, id) {
			at[e.Event] = e.Time
		}
		if !at[model.EventAccepted].Equal(created) || at[model.EventTransformStarted].Before(at[model.EventAccepted]) {
			t.Errorf("accepted at %v, transform started at %v, image created at %v: want accepted at creation, before the start",
				at[model.EventAccepted], at[model.EventTransformStarted], created)
		}
	})
}

func TestDuplicateUploadsShareOneImage(t *testing.T) {
	r := apptest.Start(t, apptest.Config(t))
	data := fixtures.JPEG(320, 240, 11)
	a := upload(t, r.URL, "width=100&format=png", data)
	b := upload(t, r.URL, "format=png&width=100", data) // same spec, other order
	if a != b {
		t.Fatalf("same bytes and spec gave ids %s and %s", a, b)
	}
	if c := upload(t, r.URL, "width=101&format=png", data); c == a {
		t.Fatal("a different spec gave the same id")
	}
	resp := r.Upload(t, "width=100&format=png", data).JSON(t)
	if resp["duplicate"] != true {
		t.Errorf("third upload not marked duplicate: %v", resp)
	}
	// Each duplicate says "accepted" again, in case the first upload's
	// event was lost with its answer; the timeline keeps one.
	seen := map[string]int{}
	apptest.Eventually(t, "two duplicates in the activity", func() bool {
		clear(seen)
		for _, e := range activity(t, r.URL, a) {
			seen[e.Event]++
		}
		return seen[model.EventDuplicate] == 2
	})
	if seen[model.EventAccepted] != 1 {
		t.Errorf("activity %v: want accepted once", seen)
	}
}

func TestBadInputIsRefusedAndServerStaysUp(t *testing.T) {
	cfg := apptest.Config(t)
	cfg.HTTP.MaxUploadBytes = 2 << 20
	cfg.HTTP.MaxRequestBytes = 3 << 20
	r := apptest.Start(t, cfg)
	jpeg := fixtures.JPEG(800, 600, 3)
	cases := []struct {
		name   string
		spec   string
		data   []byte
		status int
	}{
		{"empty", "", nil, 400},
		{"text", "", fixtures.Text(), 415},
		{"truncated", "", jpeg[:len(jpeg)/2], 422},
		{"pixel-bomb", "", fixtures.PNGBomb(30000, 30000), 422},
		{"svg", "", fixtures.SVG(), 415},
		{"too-large", "", bytes.Repeat([]byte{0xff}, 3<<20), 413},
		{"unknown-param", "wdth=10", jpeg, 400},
		{"bad-width", "width=abc", jpeg, 400},
		{"bad-fit", "fit=squash", jpeg, 400},
		{"bad-quality", "quality=101", jpeg, 400},
		{"missing-watermark", "watermark_image=0123456789abcdef0123456789abcdef", jpeg, 400},
		{"watermark-no-image-id", "watermark_image=Not_An-Id", jpeg, 400},
		// Certain to fail once queued: refused at upload.
		{"output-over-webp-limit", "width=16384&height=16&fit=fill&format=webp", jpeg, 422},
		{"output-over-limit-one-variant", "variant=a:width=100&variant=b:width=16384%3Bheight=16%3Bfit=fill%3Bformat=webp", jpeg, 422},
		// A few hundred bytes asking for minutes of an encoder nothing stops.
		{"costly-output", "width=16384&height=16384&fit=fill&format=heif", fixtures.JPEG(16, 16, 1), 422},
		{"costly-encoder", "width=7000&height=7000&fit=fill&format=heif", fixtures.JPEG(16, 16, 1), 422},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			resp := r.Upload(t, tc.spec, tc.data)
			if resp.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tc.status, resp.Body)
			}
			e, _ := resp.JSON(t)["error"].(map[string]any)
			if e == nil || e["code"] == "" || e["message"] == "" {
				t.Fatalf("error body %s lacks code and message", resp.Body)
			}
			if msg, _ := e["message"].(string); strings.HasPrefix(tc.name, "output-over") && !strings.Contains(msg, "limit for webp is 16383") {
				t.Errorf("message %q does not name the output limit", msg)
			}
			if msg, _ := e["message"].(string); strings.HasPrefix(tc.name, "costly") && !strings.Contains(msg, "pixels") {
				t.Errorf("message %q does not name the pixel limit", msg)
			}
			if msg, _ := e["message"].(string); tc.name == "missing-watermark" && (!strings.HasPrefix(msg, "watermark_image: ") || !strings.HasSuffix(msg, "0123456789abcdef0123456789abcdef")) {
				t.Errorf("message %q does not start with the parameter and end with the id", msg)
			}
			if tc.name == "pixel-bomb" && time.Since(start) > 5*time.Second {
				t.Errorf("bomb took %v: it was decoded, not refused from the header", time.Since(start))
			}
		})
	}
	// Each part under the per-image limit, together over the request's.
	big := bytes.Repeat([]byte{0xff}, 1800<<10)
	ct, body := apptest.Multipart(t, "files", map[string][]byte{"a.jpg": big, "b.jpg": big})
	if resp := apptest.Do(t, http.MethodPost, r.URL+"/v1/images", ct, body); resp.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("multipart over the request limit: %d %s", resp.Status, resp.Body)
	}
	// One file of a batch over the per-image limit is refused on its own;
	// the others go on.
	ct, body = apptest.Multipart(t, "files", map[string][]byte{"huge.jpg": bytes.Repeat([]byte{0xff}, 2500<<10), "fine.jpg": jpeg})
	resp := apptest.Do(t, http.MethodPost, r.URL+"/v1/images", ct, body)
	var batch struct {
		Images []struct {
			Filename, ID string
			Error        any
		}
	}
	if err := json.Unmarshal(resp.Body, &batch); err != nil || resp.Status != http.StatusAccepted || len(batch.Images) != 2 {
		t.Fatalf("a batch with one file over the limit: %d %s", resp.Status, resp.Body)
	}
	for _, im := range batch.Images {
		e, _ := im.Error.(map[string]any)
		switch {
		case im.Filename == "huge.jpg" && (im.ID != "" || e == nil || e["code"] != "too_large"):
			t.Errorf("the file over the limit: %+v", im)
		case im.Filename == "fine.jpg" && (im.ID == "" || im.Error != nil):
			t.Errorf("the file beside it: %+v", im)
		}
	}
	ct, body = apptest.Multipart(t, "notes", nil)
	if resp := apptest.Do(t, http.MethodPost, r.URL+"/v1/images", ct, body); resp.Status != 400 {
		t.Errorf("multipart without files: %d %s", resp.Status, resp.Body)
	}
	if resp := apptest.Do(t, http.MethodPost, r.URL+"/v1/images", strings.Replace(ct, "form-data", "mixed", 1), body); resp.Status != 415 ||
		!strings.Contains(string(resp.Body), "multipart/form-data") {
		t.Errorf("multipart/mixed: %d %s", resp.Status, resp.Body)
	}
	// A compressed body is refused, not decoded (a bomb) nor taken as is,
	// whichever header or list item names the coding.
	for _, codings := range [][]string{{"gzip"}, {"identity", "gzip"}, {"identity, br"}} {
		req, _ := http.NewRequest(http.MethodPost, r.URL+"/v1/images", bytes.NewReader(jpeg))
		req.Header.Set("Content-Type", "image/jpeg")
		req.Header["Content-Encoding"] = codings
		if resp, err := http.DefaultClient.Do(req); err != nil {
			t.Error(err)
		} else {
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 415 || !strings.Contains(string(msg), "unsupported_encoding") {
				t.Errorf("Content-Encoding %q: %d %s", codings, resp.StatusCode, msg)
			}
		}
	}
	req, _ := http.NewRequest(http.MethodPost, r.URL+"/v1/images?width=32", bytes.NewReader(jpeg))
	req.Header.Set("Content-Type", "image/jpeg")
	req.Header["Content-Encoding"] = []string{"identity", " IDENTITY"}
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Error(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("Content-Encoding identity twice: %d", resp.StatusCode)
		}
	}
	// Ids no upload could have, including ones the bus refuses as keys:
	// a client's mistake, so 404, never 500.
	for _, u := range []string{"/v1/images/nope", "/v1/images/nope/result", "/image/nope",
		"/v1/images/ABC", "/v1/images//result", "/v1/images//original", "/v1/images//activity",
		"/v1/images/" + strings.Repeat("a", 300) + "/result", "/v1/images/a.b/original", "/image/ABC",
		"/v1/images/0123456789ABCDEF0123456789ABCDEF"} {
		if resp := apptest.Get(t, r.URL+u); resp.Status != 404 {
			t.Errorf("GET %s: %d, want 404", u, resp.Status)
		}
	}
	if resp := apptest.Do(t, http.MethodHead, r.URL+"/v1/images/nope/original", "", nil); resp.Status != 404 {
		t.Errorf("HEAD of an unknown image: %d, want 404", resp.Status)
	}
	// Malformed escapes too: net/url would drop the pair and answer as if
	// it were absent. And a parameter given twice: which value would win?
	for _, u := range []string{"/v1/images?status=weird", "/v1/images?limit=0", "/v1/images?cursor=zzz",
		"/v1/images?limit=%ZZ", "/v1/images/nope/result?wait=%ZZ", "/v1/images/nope/result?variant=%G1", "/image/nope?x=%",
		"/v1/images?limit=1&limit=2", "/v1/images?status=queued&status=done", "/v1/images/nope/result?wait=1s&wait=2s"} {
		if resp := apptest.Get(t, r.URL+u); resp.Status != 400 {
			t.Errorf("GET %s: %d, want 400: %s", u, resp.Status, resp.Body)
		}
	}
	if resp := apptest.Get(t, r.URL+"/healthz"); resp.Status != 200 {
		t.Fatalf("server not healthy after bad input: %d", resp.Status)
	}
	// And it still works.
	waitOK(t, r.URL, upload(t, r.URL, "width=50", jpeg))
}

func TestMultipartBatchAndPrototypeEndpoints(t *testing.T) {
	r := apptest.Start(t, apptest.Config(t))
	ct, body := apptest.Multipart(t, "files", map[string][]byte{
		"a.jpg":   fixtures.JPEG(300, 200, 21),
		"b.png":   fixtures.PNG(200, 300, 22, false),
		"bad.txt": fixtures.Text(),
	})
	resp := apptest.Do(t, http.MethodPost, r.URL+"/v1/images?width=100&format=png", ct, body)
	if resp.Status != http.StatusAccepted {
		t.Fatalf("batch: %d %s", resp.Status, resp.Body)
	}
	var batch struct {
		Images []struct {
			ID, Filename string
			Error        *struct{ Code, Message string }
		}
	}
	if err := json.Unmarshal(resp.Body, &batch); err != nil || len(batch.Images) != 3 {
		t.Fatalf("batch body: %v %s", err, resp.Body)
	}
	for _, im := range batch.Images {
		switch {
		case im.Filename == "bad.txt":
			if im.Error == nil || im.Error.Code == "" {
				t.Errorf("text file not refused: %+v", im)
			}
		case im.ID == "":
			t.Errorf("%s not accepted: %+v", im.Filename, im.Error)
		default:
			_, img := apptest.Decode(t, waitOK(t, r.URL, im.ID).Body)
			if img.Bounds().Dx() > 100 {
				t.Errorf("%s: width %d", im.Filename, img.Bounds().Dx())
			}
		}
	}

	// A batch with nothing accepted is an error, in the one error shape,
	// with each file's reason beside it.
	ct, body = apptest.Multipart(t, "files", map[string][]byte{"x.txt": fixtures.Text(), "y.txt": fixtures.Text()})
	resp = apptest.Do(t, http.MethodPost, r.URL+"/v1/images", ct, body)
	var none struct {
		Error  struct{ Code, Message string }
		Images []struct{ Error *struct{ Code string } }
	}
	if err := json.Unmarshal(resp.Body, &none); err != nil || resp.Status != http.StatusUnsupportedMediaType ||
		none.Error.Code != "unsupported_type" || !strings.Contains(none.Error.Message, "none of the 2 files") ||
		len(none.Images) != 2 || none.Images[0].Error == nil || none.Images[1].Error == nil {
		t.Errorf("batch with nothing accepted: %d %s", resp.Status, resp.Body)
	}

	// The prototype's API: POST /image with field "image", GET /image/{id}
	// with 204 until ready.
	ct, body = apptest.Multipart(t, "image", map[string][]byte{"p.jpg": fixtures.JPEG(500, 500, 23)})
	resp = apptest.Do(t, http.MethodPost, r.URL+"/image", ct, body)
	id, _ := resp.JSON(t)["id"].(string)
	if resp.Status != http.StatusOK || id == "" {
		t.Fatalf("POST /image: %d %s", resp.Status, resp.Body)
	}
	var got apptest.Response
	apptest.Eventually(t, "GET /image/{id} to answer 200", func() bool {
		got = apptest.Get(t, r.URL+"/image/"+id)
		if got.Status != http.StatusOK && got.Status != http.StatusNoContent {
			t.Fatalf("GET /image/%s: %d %s", id, got.Status, got.Body)
		}
		return got.Status == http.StatusOK
	})
	if format, _ := apptest.Decode(t, got.Body); format != "webp" {
		t.Errorf("prototype result format %s, want the default webp", format)
	}
	// Its answer has room for one id: two files are refused, not one
	// taken and the other dropped.
	ct, body = apptest.Multipart(t, "image", map[string][]byte{"p.jpg": fixtures.JPEG(50, 50, 24), "q.jpg": fixtures.JPEG(50, 50, 25)})
	if resp = apptest.Do(t, http.MethodPost, r.URL+"/image", ct, body); resp.Status != http.StatusBadRequest ||
		!strings.Contains(string(resp.Body), `"code":"one_file_expected"`) {
		t.Errorf("POST /image with two files: %d %s", resp.Status, resp.Body)
	}
}

func TestListingAndLiveEvents(t *testing.T) {
	r := apptest.Start(t, apptest.Config(t))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/v1/events", nil)
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if ct := stream.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events Content-Type %q", ct)
	}

	var ids []string
	for i := range 3 {
		ids = append(ids, upload(t, r.URL, "width=20", fixtures.JPEG(100, 100, uint64(100+i))))
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(stream.Body)
	for sc.Scan() && !seen[ids[2]+"transform.done"] {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev struct {
			ImageID string `json:"image_id"`
			Event   string
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event is not JSON: %q", line)
		}
		seen[ev.ImageID+ev.Event] = true
	}
	if !seen[ids[0]+"accepted"] || !seen[ids[2]+"transform.done"] {
		t.Fatalf("live feed missed events; saw %v", seen)
	}

	for _, id := range ids {
		waitOK(t, r.URL, id)
	}
	// Listing reads the store, which save2db fills a moment after done.
	var all []string
	apptest.Eventually(t, "three done images listed", func() bool {
		all = all[:0]
		cursor := ""
		for {
			var page struct {
				Images     []struct{ ID string }
				NextCursor string `json:"next_cursor"`
			}
			_ = json.Unmarshal(apptest.Get(t, r.URL+"/v1/images?status=done&limit=2&cursor="+cursor).Body, &page)
			if len(page.Images) > 2 {
				t.Fatalf("page of %d with limit 2", len(page.Images))
			}
			for _, im := range page.Images {
				all = append(all, im.ID)
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		return len(all) == 3
	})
	// Newest first.
	if all[0] != ids[2] || all[2] != ids[0] {
		t.Errorf("listing order %v, uploads were %v", all, ids)
	}
}

func TestPresetsEndpoint(t *testing.T) {
	cfg := apptest.Config(t)
	cfg.Transform.DefaultSpec = "width=300&format=png"
	r := apptest.Start(t, cfg)
	p, _ := apptest.Get(t, r.URL+"/v1/presets").JSON(t)["presets"].(map[string]any)
	for _, name := range []string{"thumb", "preview", "web"} {
		if s, _ := p[name].(string); s == "" {
			t.Errorf("preset %s missing: %v", name, p)
		}
	}
	if d := apptest.Get(t, r.URL+"/v1/presets").JSON(t)["default"]; d != cfg.Transform.DefaultSpec {
		t.Errorf("default spec %v, want the configured %q", d, cfg.Transform.DefaultSpec)
	}
}

// TestLimitsEndpoint: the limits a client can check before uploading are
// the configured ones.
func TestLimitsEndpoint(t *testing.T) {
	cfg := apptest.Config(t)
	cfg.HTTP.MaxUploadBytes, cfg.Transform.MaxOutputDim = 12345, 2000
	r := apptest.Start(t, cfg)
	got := apptest.Get(t, r.URL+"/v1/limits").JSON(t)
	for key, want := range map[string]float64{"max_upload_bytes": 12345, "max_output_dimension": 2000,
		"max_files": float64(cfg.HTTP.MaxFiles), "max_input_pixels": float64(cfg.Transform.MaxInputPixels)} {
		if got[key] != want {
			t.Errorf("%s: %v, want %v", key, got[key], want)
		}
	}
}

// upload posts data and returns the new image's id.
func upload(t *testing.T, base, spec string, data []byte) string {
	t.Helper()
	resp := apptest.Upload(t, base, spec, data)
	body := resp.JSON(t)
	id, _ := body["id"].(string)
	if resp.Status != http.StatusAccepted || id == "" {
		t.Fatalf("upload: %d %s", resp.Status, resp.Body)
	}
	if loc := resp.Header.Get("Location"); loc != "/v1/images/"+id {
		t.Errorf("Location %q", loc)
	}
	return id
}

// waitOK waits for a result and requires 200.
func waitOK(t *testing.T, base, id string) apptest.Response {
	t.Helper()
	resp := apptest.Result(t, base, id, "")
	if resp.Status != http.StatusOK {
		t.Fatalf("result of %s: %d %s", id, resp.Status, resp.Body)
	}
	return resp
}

// TestFailingImageEndsFailed: an image that fails every attempt (here: a
// processing timeout too short for it, a real libvips kill) ends failed
// with its error, is answered 422, and is never dropped.
func TestFailingImageEndsFailed(t *testing.T) {
	cfg := apptest.Config(t)
	cfg.Transform.Timeout = time.Millisecond
	cfg.NATS.Retry.MaxDeliver = 2
	cfg.NATS.Retry.Backoff = []time.Duration{50 * time.Millisecond}
	r := apptest.Start(t, cfg)
	id := upload(t, r.URL, "width=3000&height=3000&fit=fill&blur=20&format=png", fixtures.JPEG(2000, 1500, 60))
	res := apptest.Result(t, r.URL, id, "")
	if res.Status != http.StatusUnprocessableEntity {
		t.Fatalf("result: %d %s", res.Status, res.Body)
	}
	rec := apptest.Get(t, r.URL+"/v1/images/"+id).JSON(t)
	if rec["status"] != "failed" || rec["error"] == "" || rec["attempts"].(float64) != 2 {
		t.Fatalf("record: %v", rec)
	}
	if legacy := apptest.Get(t, r.URL+"/image/"+id); legacy.Status != http.StatusUnprocessableEntity {
		t.Errorf("prototype GET of a failed image: %d", legacy.Status)
	}
	waitSaved(t, r.URL, id) // persisted as failed, original kept
	if orig := apptest.Get(t, r.URL+"/v1/images/"+id+"/original"); orig.Status != http.StatusOK {
		t.Errorf("original of a failed image: %d", orig.Status)
	}
	var events struct{ Events []struct{ Event string } }
	_ = json.Unmarshal(apptest.Get(t, r.URL+"/v1/images/"+id+"/activity").Body, &events)
	seen := map[string]int{}
	for _, e := range events.Events {
		seen[e.Event]++
	}
	if seen["transform.retry"] != 1 || seen["transform.failed"] != 1 {
		t.Errorf("activity %v: want one retry then failed", seen)
	}
	metrics := apptest.Get(t, r.URL+"/metrics")
	for _, series := range []string{`imgpipe_uploads_total{outcome="accepted"} 1`, `imgpipe_messages_handled_total{outcome="failed",role="transform"} 1`} {
		if !bytes.Contains(metrics.Body, []byte(series)) {
			t.Errorf("/metrics lacks %s", series)
		}
	}

	// A timeout comes from the machine at the time, not from the image:
	// uploading it again queues a new run, whose attempts count anew.
	// Here it fails the same way (the timeout is still 1 ms)...
	spec, data := "width=3000&height=3000&fit=fill&blur=20&format=png", fixtures.JPEG(2000, 1500, 60)
	again := apptest.Upload(t, r.URL, spec, data)
	// (Answered as the new run stands: a worker may be on it already.)
	if body := again.JSON(t); again.Status != http.StatusAccepted || body["id"] != id || body["retries"] != float64(1) {
		t.Fatalf("upload of an image failed by a timeout: %d %s, want it queued again", again.Status, again.Body)
	}
	if res := apptest.Result(t, r.URL, id, ""); res.Status != http.StatusUnprocessableEntity {
		t.Fatalf("second run: %d %s", res.Status, res.Body)
	}
	if rec := apptest.Get(t, r.URL+"/v1/images/"+id).JSON(t); rec["status"] != "failed" || rec["retries"] != float64(1) || rec["attempts"] != float64(2) {
		t.Fatalf("record after the second run: %v", rec)
	}
	waitEvents(t, r.URL, id, model.EventRequeued)
	metrics = apptest.Get(t, r.URL+"/metrics")
	for _, series := range []string{`imgpipe_uploads_total{outcome="requeued"} 1`, `imgpipe_uploads_total{outcome="duplicate"}`} {
		if want := strings.HasSuffix(series, " 1"); bytes.Contains(metrics.Body, []byte(series)) != want {
			t.Errorf("/metrics: %s present %v, want %v (a retry is not a duplicate)", series, !want, want)
		}
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	// ... and once the machine is given time, the next run succeeds: its
	// result replaces the failure, in the status table and in the store.
	cfg.Transform.Timeout = time.Minute
	r = apptest.Start(t, cfg)
	if body := apptest.Upload(t, r.URL, spec, data).JSON(t); body["retries"] != float64(2) {
		t.Fatalf("third upload: %v", body)
	}
	res = waitOK(t, r.URL, id)
	if format, img := apptest.Decode(t, res.Body); format != "png" || img.Bounds().Dx() != 3000 || img.Bounds().Dy() != 3000 {
		t.Fatalf("third run's result: %s %v", format, img.Bounds())
	}
	// The logger stores batches concurrently, so the third run's events
	// may be kept before the second run's last ones, left in the stream
	// at the restart: wait for all, not for the last.
	every := func() bool {
		seen = map[string]int{}
		for _, e := range activity(t, r.URL, id) {
			seen[e.Event]++
		}
		return seen["requeued"] == 2 && seen["transform.failed"] == 2 && seen["transform.done"] == 1 && seen["transform.started"] == 5
	}
	for deadline := time.Now().Add(30 * time.Second); !every() && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	if !every() {
		t.Errorf("activity %v: want every run's events", seen)
	}
	apptest.Eventually(t, "the store to hold the success", func() bool {
		page := apptest.Get(t, r.URL+"/v1/images?status=done").JSON(t)
		images, _ := page["images"].([]any)
		return len(images) == 1
	})
}

// TestShutdownEndsLiveStreams: an open event stream and a long poll do not
// hold the drain: Stop returns promptly and both requests end.
func TestShutdownEndsLiveStreams(t *testing.T) {
	r := apptest.Start(t, apptest.Config(t))
	id := upload(t, r.URL, "width=10", fixtures.JPEG(64, 64, 70))
	waitOK(t, r.URL, id)
	stream, err := http.Get(r.URL + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	start := time.Now()
	if err := r.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stop took %v with a live stream open", d)
	}
	if _, err := io.Copy(io.Discard, stream.Body); err != nil {
		t.Logf("stream ended with %v", err)
	}
}

// TestTimedOutRenderTriedTwice: a render that runs out of time is tried
// once more, not Retry.MaxDeliver times: each attempt costs a worker the
// whole timeout.
func TestTimedOutRenderTriedTwice(t *testing.T) {
	cfg := apptest.Config(t)
	cfg.Transform.Timeout = time.Millisecond
	cfg.NATS.Retry.Backoff = []time.Duration{50 * time.Millisecond}
	if cfg.NATS.Retry.MaxDeliver <= 2 {
		t.Fatalf("MaxDeliver %d leaves nothing to cut short", cfg.NATS.Retry.MaxDeliver)
	}
	r := apptest.Start(t, cfg)
	id := upload(t, r.URL, "width=3000&height=3000&fit=fill&blur=20&format=png", fixtures.JPEG(2000, 1500, 61))
	res := apptest.Result(t, r.URL, id, "")
	if e, _ := res.JSON(t)["error"].(map[string]any); res.Status != http.StatusUnprocessableEntity || e["code"] != "timeout" {
		t.Fatalf("result: %d %s, want 422 with code timeout", res.Status, res.Body)
	}
	rec := apptest.Get(t, r.URL+"/v1/images/"+id).JSON(t)
	if rec["status"] != "failed" || rec["error"] != "processing took too long" || rec["error_code"] != "timeout" || rec["attempts"].(float64) != 2 {
		t.Fatalf("record: %v, want failed after 2 attempts, processing took too long (timeout)", rec)
	}
	// The logger stores activity on its own time: wait for the outcome.
	seen := map[string]int{}
	apptest.Eventually(t, "transform.failed in the activity", func() bool {
		var events struct{ Events []struct{ Event string } }
		_ = json.Unmarshal(apptest.Get(t, r.URL+"/v1/images/"+id+"/activity").Body, &events)
		clear(seen)
		for _, e := range events.Events {
			seen[e.Event]++
		}
		return seen["transform.failed"] > 0
	})
	if seen["transform.started"] != 2 || seen["transform.retry"] != 1 || seen["transform.failed"] != 1 {
		t.Errorf("activity %v: want two starts, one retry, then failed", seen)
	}
}

// TestRangeRequests: results and originals are served in parts on
// request (resumed downloads, CDNs), and a range that cannot be served is
// refused in the API's JSON error shape.
func TestRangeRequests(t *testing.T) {
	r := apptest.Start(t, apptest.Config(t))
	data := fixtures.PNG(300, 200, 41, false)
	id := upload(t, r.URL, "width=200&format=png", data)
	whole := waitOK(t, r.URL, id)
	n, etag := len(whole.Body), whole.Header.Get("ETag")
	get := func(path string, headers ...string) apptest.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, r.URL+"/v1/images/"+id+path, nil)
		for i := 0; i < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	}
	for _, c := range []struct {
		rng        string
		from, to   int // the bytes expected, [from, to)
		contentRng string
	}{
		{"bytes=0-99", 0, 100, fmt.Sprintf("bytes 0-99/%d", n)},
		{"bytes=-10", n - 10, n, fmt.Sprintf("bytes %d-%d/%d", n-10, n-1, n)},
		{fmt.Sprintf("bytes=%d-", n-1), n - 1, n, fmt.Sprintf("bytes %d-%d/%d", n-1, n-1, n)},
		// A suffix longer than the bytes, even than an int64, is all of them.
		{"bytes=-99999999999999999999", 0, n, fmt.Sprintf("bytes 0-%d/%d", n-1, n)},
	} {
		part := get("/result", "Range", c.rng)
		if part.Status != http.StatusPartialContent || part.Header.Get("Content-Range") != c.contentRng ||
			!bytes.Equal(part.Body, whole.Body[c.from:c.to]) || part.Header.Get("Content-Type") != "image/png" {
			t.Errorf("Range %s: %d, Content-Range %q, %d bytes", c.rng, part.Status, part.Header.Get("Content-Range"), len(part.Body))
		}
	}
	if part := get("/original", "Range", "bytes=5-9"); part.Status != http.StatusPartialContent || !bytes.Equal(part.Body, data[5:10]) {
		t.Errorf("Range of the original: %d %q", part.Status, part.Body)
	}
	// If-Range: the part while the ETag holds, else the whole.
	if part := get("/result", "Range", "bytes=0-9", "If-Range", etag); part.Status != http.StatusPartialContent || len(part.Body) != 10 {
		t.Errorf("If-Range with the ETag: %d, %d bytes", part.Status, len(part.Body))
	}
	if full := get("/result", "Range", "bytes=0-9", "If-Range", `"other"`); full.Status != http.StatusOK || !bytes.Equal(full.Body, whole.Body) {
		t.Errorf("If-Range with another ETag: %d, %d bytes", full.Status, len(full.Body))
	}
	for _, bad := range []string{fmt.Sprintf("bytes=%d-", n), "bytes=9-2", "bytes=x", "bytes=-0"} {
		refused := get("/result", "Range", bad)
		e, _ := refused.JSON(t)["error"].(map[string]any)
		if refused.Status != http.StatusRequestedRangeNotSatisfiable || e == nil || e["code"] != "bad_range" ||
			!strings.Contains(e["message"].(string), strconv.Itoa(n)) || refused.Header.Get("Cache-Control") != "" {
			t.Errorf("Range %s: %d %s (Cache-Control %q)", bad, refused.Status, refused.Body, refused.Header.Get("Cache-Control"))
		}
		// What was wrong with it: its form, or where it lies.
		if malformed := bad == "bytes=9-2" || bad == "bytes=x"; malformed != strings.Contains(string(refused.Body), "malformed") {
			t.Errorf("Range %s: %s", bad, refused.Body)
		}
	}
	// A unit other than bytes is ignored (RFC 9110): the whole.
	if full := get("/result", "Range", "pages=1"); full.Status != http.StatusOK || !bytes.Equal(full.Body, whole.Body) {
		t.Errorf("Range pages=1: %d, %d bytes", full.Status, len(full.Body))
	}
	// net/http's other refusal on this path is JSON too.
	if refused := get("/result", "Range", "bytes=0-9", "If-Match", `"other"`); refused.Status != http.StatusPreconditionFailed ||
		refused.JSON(t)["error"].(map[string]any)["code"] != "precondition_failed" {
		t.Errorf("If-Match with another ETag: %d %s", refused.Status, refused.Body)
	}
	// And without a Range, If-Match is compared strongly, before
	// If-None-Match.
	for _, c := range []struct {
		ifMatch string
		status  int
	}{
		{etag, http.StatusOK}, {"*", http.StatusOK}, {`"other", ` + etag, http.StatusOK},
		{`"other"`, http.StatusPreconditionFailed}, {"W/" + etag, http.StatusPreconditionFailed},
	} {
		got := get("/result", "If-Match", c.ifMatch)
		switch {
		case got.Status != c.status:
			t.Errorf("If-Match %s: %d %.200q, want %d", c.ifMatch, got.Status, got.Body, c.status)
		case c.status == http.StatusOK && !bytes.Equal(got.Body, whole.Body):
			t.Errorf("If-Match %s: %d bytes, want the whole result", c.ifMatch, len(got.Body))
		case c.status != http.StatusOK && got.JSON(t)["error"].(map[string]any)["code"] != "precondition_failed":
			t.Errorf("If-Match %s: %s", c.ifMatch, got.Body)
		case c.status != http.StatusOK && got.Header.Get("Cache-Control") != "":
			t.Errorf("If-Match %s: the 412 says Cache-Control %q; a cache must not keep a refusal", c.ifMatch, got.Header.Get("Cache-Control"))
		}
	}
	if got := get("/result", "If-Match", `"other"`, "If-None-Match", etag); got.Status != http.StatusPreconditionFailed {
		t.Errorf("If-Match that fails with an If-None-Match that holds: %d, want 412", got.Status)
	}
	if head := apptest.Do(t, http.MethodHead, r.URL+"/v1/images/"+id+"/result", "", nil); head.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("HEAD does not offer ranges: %v", head.Header)
	}
}

// A client that lost the live feed resumes it with Last-Event-ID, as
// EventSource does by itself: it gets what it missed, and nothing twice.
func TestLiveEventsResume(t *testing.T) {
	r := apptest.Start(t, apptest.Config(t))
	type sse struct{ pos, id, image, event string }
	// follow opens the feed (with Last-Event-ID when last is set), runs
	// start, and reads until the image start returned has been accepted
	// and done. Either may come first: "accepted" is emitted once the api
	// has its record, and a small image can be transformed before that,
	// its events then sharing a batch.
	follow := func(last string, start func() string) []sse {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/v1/events", nil)
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		stream, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Body.Close()
		image := start()
		var got []sse
		pos := ""
		var accepted, done bool
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				pos = p
				continue
			}
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var ev struct {
				ID, Event string
				ImageID   string `json:"image_id"`
			}
			if err := json.Unmarshal([]byte(data), &ev); err != nil || pos == "" {
				t.Fatalf("event %q after id %q: %v", data, pos, err)
			}
			got = append(got, sse{pos, ev.ID, ev.ImageID, ev.Event})
			if ev.ImageID == image {
				accepted = accepted || ev.Event == model.EventAccepted
				done = done || ev.Event == model.EventTransformDone
			}
			if accepted && done {
				return got
			}
		}
		t.Fatalf("feed ended before %s was accepted and done: %v", image, sc.Err())
		return nil
	}

	seen := follow("", func() string { return upload(t, r.URL, "width=30", fixtures.JPEG(90, 90, 301)) })
	last := seen[len(seen)-1].pos
	// Lost: meanwhile another image goes all the way through.
	missed := upload(t, r.URL, "width=30", fixtures.JPEG(90, 90, 302))
	waitOK(t, r.URL, missed)
	resumed := follow(last, func() string { return missed })

	sent := map[string]bool{}
	for _, e := range seen {
		sent[e.id] = true
	}
	got := map[string]bool{}
	for i, e := range resumed {
		if sent[e.id] {
			t.Errorf("resumed feed sent %s %s again (position %s, after %s)", e.image, e.event, e.pos, last)
		}
		if i > 0 && e.pos == resumed[i-1].pos {
			t.Errorf("position %s given twice", e.pos)
		}
		if e.image == missed {
			got[e.event] = true
		}
	}
	for _, want := range []string{model.EventAccepted, model.EventTransformStarted, model.EventTransformDone} {
		if !got[want] {
			t.Errorf("resumed feed lacks %s of the image uploaded while it was lost; got %v", want, resumed)
		}
	}

	req, _ := http.NewRequest(http.MethodGet, r.URL+"/v1/events", nil)
	req.Header.Set("Last-Event-ID", "yesterday")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a Last-Event-ID the feed never sent: %v %v", resp.Status, err)
	}
}
