package transform

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/model"
)

func parse(t *testing.T, e *Engine, q string) (Request, error) {
	t.Helper()
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatalf("test query %q: %v", q, err)
	}
	return e.ParseRequest(v)
}

// Every parameter, its accepted spellings and the canonical form.
func TestSpecEveryParameter(t *testing.T) {
	e := testEngine(t)
	cases := []struct{ in, canonical string }{
		{"width=300", "width=300"},
		{"height=200", "height=200"},
		{"width=0", ""},
		{"fit=inside", ""},
		{"fit=COVER", "fit=cover"},
		{"fit=fill", "fit=fill"},
		{"fit=contain", "fit=contain"},
		{"enlarge=1", "enlarge=true"},
		{"enlarge=false", ""},
		{"gravity=centre", ""},
		{"gravity=north", "gravity=north"},
		{"gravity=southwest", "gravity=southwest"},
		{"gravity=attention", "gravity=smart"},
		{"gravity=entropy", "gravity=entropy"},
		{"extract=10,20,30,40", "extract=10%2C20%2C30%2C40"},
		{"extract=10, 20, 30, 40", "extract=10%2C20%2C30%2C40"},
		{"rotate=90", "rotate=90"},
		{"rotate=-90", "rotate=270"},
		{"rotate=360", ""},
		{"rotate=-360", ""},
		{"flip=true", "flip=true"},
		{"flop=1", "flop=true"},
		{"blur=1.50", "blur=1.5"},
		{"blur=0", ""},
		{"sharpen=2", "sharpen=2"},
		{"grayscale=TRUE", "grayscale=true"},
		{"background=%23FF0000", "background=ff0000"},
		{"background=f00", "background=ff0000"},
		{"watermark_text=%C2%A9+Ann+%26+Bo", "watermark_text=%C2%A9+Ann+%26+Bo"},
		{"watermark_image=abc_123-X", "watermark_image=abc_123-X"},
		{"watermark_opacity=0.5", ""},
		{"watermark_opacity=1", "watermark_opacity=1"},
		{"watermark_position=southeast", ""},
		{"watermark_position=tile", "watermark_position=tile"},
		{"watermark_position=northwest", "watermark_position=northwest"},
		{"watermark_size=0.25", "watermark_size=0.25"},
		{"format=jpg", "format=jpeg"},
		{"format=heic", "format=heif"},
		{"format=auto", ""},
		{"format=avif", "format=avif"},
		{"quality=80", ""},
		{"quality=60", "quality=60"},
		{"lossless=true", "lossless=true"},
		{"progressive=1", "progressive=true"},
		{"strip=true", ""},
		{"strip=0", "strip=false"},
	}
	for _, c := range cases {
		req, err := parse(t, e, c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got := req.Canonical(); got != c.canonical {
			t.Errorf("%s: canonical %q, want %q", c.in, got, c.canonical)
		}
	}
	// Every public parameter name is covered above.
	for name := range specParams {
		found := false
		for _, c := range cases {
			found = found || strings.HasPrefix(c.in, name+"=")
		}
		if !found {
			t.Errorf("parameter %s has no case", name)
		}
	}
}

func TestSpecFieldValues(t *testing.T) {
	e := testEngine(t)
	s := spec(t, e, "width=300&height=200&fit=cover&gravity=northeast&extract=1,2,3,4&rotate=180&flip=1&flop=1"+
		"&blur=2&sharpen=1&grayscale=1&background=0a0b0c&watermark_text=hi&watermark_opacity=0.3"+
		"&watermark_position=tile&watermark_size=0.5&format=webp&quality=70&lossless=1&progressive=1&strip=0&enlarge=1")
	want := Spec{Width: 300, Height: 200, Fit: FitCover, Enlarge: true, Gravity: GravityNorthEast,
		Extract: &Rect{1, 2, 3, 4}, Rotate: 180, Flip: true, Flop: true, Blur: 2, Sharpen: 1, Grayscale: true,
		Background: &Color{10, 11, 12}, WatermarkText: "hi", WatermarkOpacity: 0.3, WatermarkPosition: GravityTile,
		WatermarkSize: 0.5, Format: "webp", Quality: 70, Lossless: true, Progressive: true, KeepMetadata: true}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

// Bad values are 400s whose message starts with the parameter's name.
func TestSpecBadValues(t *testing.T) {
	e := testEngine(t)
	cases := []struct{ q, param string }{
		{"width=-1", "width"}, {"width=abc", "width"}, {"width=16385", "width"}, {"height=1.5", "height"},
		{"fit=stretch", "fit"}, {"enlarge=yes", "enlarge"}, {"gravity=up", "gravity"},
		{"extract=1,2,3", "extract"}, {"extract=1,2,0,4", "extract"}, {"extract=-1,2,3,4", "extract"}, {"extract=a,b,c,d", "extract"},
		{"rotate=45", "rotate"}, {"rotate=x", "rotate"}, {"flip=2", "flip"}, {"flop=on", "flop"},
		{"blur=-1", "blur"}, {"blur=51", "blur"}, {"blur=NaN", "blur"}, {"sharpen=11", "sharpen"},
		{"grayscale=maybe", "grayscale"}, {"background=red", "background"}, {"background=ff00", "background"},
		{"background=%23gggggg", "background"}, {"watermark_text=", "watermark_text"},
		{"watermark_text=%20%E2%80%8B", "watermark_text"}, {"watermark_text=%C2%AD%EF%BB%BF%E2%81%A0", "watermark_text"},
		{"watermark_text=%E2%80%8D%E2%80%8D", "watermark_text"}, {"watermark_text=%F3%A0%80%81", "watermark_text"},
		{"watermark_text=" + strings.Repeat("a", 201), "watermark_text"}, {"watermark_text=a%0Ab", "watermark_text"},
		{"watermark_image=../etc", "watermark_image"}, {"watermark_opacity=0", "watermark_opacity"},
		{"watermark_opacity=1.1", "watermark_opacity"}, {"watermark_position=smart", "watermark_position"},
		{"watermark_size=2", "watermark_size"}, {"format=bmp", "format"}, {"quality=0", "quality"},
		{"quality=101", "quality"}, {"lossless=x", "lossless"}, {"progressive=x", "progressive"}, {"strip=x", "strip"},
		{"colour=red", "colour"}, {"width=1&width=2", "width"}, {"preset=nope", "preset"},
		{"watermark_text=a&watermark_image=b", "watermark_image"}, {"variant=Bad:width=1", "variant"},
		{"variant=a:width=x", "variant a: width"}, {"variant=a:bogus=1", "variant a: bogus"},
	}
	for _, c := range cases {
		_, err := parse(t, e, c.q)
		if err == nil {
			t.Errorf("%s: accepted", c.q)
			continue
		}
		pe := wantError(t, err, http.StatusBadRequest, CodeInvalidParameter)
		if !strings.HasPrefix(pe.Message, c.param+":") {
			t.Errorf("%s: message %q does not name %q", c.q, pe.Message, c.param)
		}
		if !pe.Permanent() {
			t.Errorf("%s: 400 must be permanent", c.q)
		}
	}
}

func TestSpecDefaultAndPresets(t *testing.T) {
	e := testEngine(t)
	req, err := e.ParseRequest(url.Values{})
	if err != nil || len(req.Variants) != 1 || req.Variants[0].Name != "default" {
		t.Fatalf("empty request: %+v %v", req, err)
	}
	if got := req.Canonical(); got != "fit=inside&format=webp&height=1600&width=1600" && got != "format=webp&height=1600&width=1600" {
		t.Errorf("default canonical %q", got)
	}

	// preset=thumb,web: two variants; top-level params override both.
	req, err = parse(t, e, "preset=thumb,web&quality=50&format=png")
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Variants) != 2 || req.Variants[0].Name != "thumb" || req.Variants[1].Name != "web" {
		t.Fatalf("variants %+v", req.Variants)
	}
	thumb := req.Variants[0].Spec
	if thumb.Width != 200 || thumb.Fit != FitCover || thumb.Quality != 50 || thumb.Format != "png" {
		t.Errorf("thumb %+v", thumb)
	}
	if web := req.Variants[1].Spec; web.Width != 1920 || web.Quality != 50 || web.Format != "png" {
		t.Errorf("web %+v", web)
	}
	// An explicit default overrides a preset's non-default.
	req, _ = parse(t, e, "preset=thumb&fit=inside")
	if req.Variants[0].Spec.Fit != "" {
		t.Errorf("fit=inside did not override the preset: %+v", req.Variants[0].Spec)
	}
	if p := e.Presets(); p["thumb"] != "fit=cover&format=webp&gravity=smart&height=200&quality=75&width=200" {
		t.Errorf("presets %v", p)
	}
}

func TestSpecVariants(t *testing.T) {
	e := testEngine(t)
	// Top-level applies to all, the variant's own wins, preset inside a variant is its base.
	req, err := parse(t, e, "format=png&quality=70&variant="+url.QueryEscape("small:width=100;height=100;fit=cover")+
		"&variant="+url.QueryEscape("big:preset=web|quality=90")+"&variant="+url.QueryEscape("txt:watermark_text=a%3Bb+c"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Spec{}
	for _, v := range req.Variants {
		got[v.Name] = v.Spec
	}
	if s := got["small"]; s.Width != 100 || s.Fit != FitCover || s.Format != "png" || s.Quality != 70 {
		t.Errorf("small %+v", s)
	}
	if s := got["big"]; s.Width != 1920 || s.Quality != 90 || s.Format != "png" {
		t.Errorf("big %+v", s)
	}
	if s := got["txt"]; s.WatermarkText != "a;b c" {
		t.Errorf("txt %+v", s)
	}
	want := "variant=big:format=png;height=1920;quality=90;width=1920&variant=small:fit=cover;format=png;height=100;quality=70;width=100&variant=txt:format=png;quality=70;watermark_text=a%3Bb+c"
	if c := req.Canonical(); c != want {
		t.Errorf("canonical\n%s\nwant\n%s", c, want)
	}
	back, err := ParseCanonical(req.Canonical())
	if err != nil || back.Canonical() != req.Canonical() || !reflect.DeepEqual(back, req) {
		t.Errorf("round trip: %v\n%+v\n%+v", err, back, req)
	}

	// Raw semicolons survive ParseRequestString (net/url would drop the pair).
	req, err = e.ParseRequestString("variant=a:width=10;height=20&variant=b:width=30")
	if err != nil || len(req.Variants) != 2 || req.Variants[0].Spec.Height != 20 {
		t.Errorf("raw: %+v %v", req, err)
	}

	// Outside a variant a ';' is part of the value: a mistake said as one,
	// where the value is refused, and no mistake in a watermark's text.
	_, err = e.ParseRequestString("width=10;height=20")
	if pe, ok := AsError(err); !ok || pe.Code != CodeInvalidParameter || !strings.HasPrefix(pe.Message, "width: ") || !strings.Contains(pe.Message, `separate parameters with "&"`) {
		t.Errorf("width=10;height=20: %v", err)
	}
	if _, err = e.ParseRequestString("width=10&height=x;y"); err == nil || !strings.Contains(err.Error(), `separate parameters with "&"`) {
		t.Errorf("height=x;y: %v", err)
	}
	if _, err = e.ParseRequestString("width=x"); err == nil || strings.Contains(err.Error(), `"&"`) {
		t.Errorf("width=x: %v, want no word of separators", err)
	}
	if req, err = e.ParseRequestString("watermark_text=a;b"); err != nil || req.Variants[0].Spec.WatermarkText != "a;b" {
		t.Errorf("watermark_text=a;b: %+v %v", req, err)
	}

	bad := []string{
		"variant=a:width=1&variant=a:width=2",             // duplicate name
		"preset=thumb&variant=thumb:width=1",              // clashes with preset variant
		"variant=" + strings.Repeat("x", 33) + ":width=1", // name too long
		"variant=nocolon",
		"variant=a:width=1;width=2",
		"variant=a:preset=nope",
	}
	var many []string
	for i := 0; i < 11; i++ {
		many = append(many, "variant=v"+string(rune('a'+i))+":width=1")
	}
	bad = append(bad, strings.Join(many, "&"))
	for _, q := range bad {
		if _, err := e.ParseRequestString(q); err == nil {
			t.Errorf("%s: accepted", q)
		} else {
			wantError(t, err, http.StatusBadRequest, CodeInvalidParameter)
		}
	}
}

// Same meaning, same string: order, aliases, defaults and spelling do not
// change the canonical form.
func TestCanonicalStability(t *testing.T) {
	e := testEngine(t)
	groups := [][]string{
		{"width=300&height=200&fit=cover", "fit=cover&height=200&width=300", "height=200&fit=COVER&width=300&quality=80&strip=1&enlarge=0"},
		{"background=%23F00&format=jpg", "format=jpeg&background=ff0000", "background=FF0000&format=JPEG"},
		{"gravity=attention&fit=cover&width=1&height=1", "height=1&width=1&fit=cover&gravity=smart"},
		{"watermark_text=x&watermark_opacity=0.5&watermark_position=southeast", "watermark_text=x"},
		{"preset=thumb", "preset=thumb&gravity=smart"},
	}
	for _, g := range groups {
		first := ""
		for i, q := range g {
			req, err := parse(t, e, q)
			if err != nil {
				t.Fatal(q, err)
			}
			c := req.Canonical()
			if i == 0 {
				first = c
			} else if c != first {
				t.Errorf("%q -> %q, but %q -> %q", g[0], first, q, c)
			}
			back, err := ParseCanonical(c)
			if err != nil || back.Canonical() != c {
				t.Errorf("%q: ParseCanonical: %q %v", c, back.Canonical(), err)
			}
		}
	}
}

func TestWatermarkIDs(t *testing.T) {
	e := testEngine(t)
	req, err := e.ParseRequestString("watermark_image=logo&variant=a:width=10&variant=b:watermark_image=other")
	if err != nil {
		t.Fatal(err)
	}
	if ids := req.WatermarkIDs(); !reflect.DeepEqual(ids, []string{"logo", "other"}) {
		t.Errorf("ids %v", ids)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.MaxFrames = 0
	c.Presets = map[string]string{"Bad Name": "width=1", "ok": "width=-5", "x": "preset=ok", "default": "width=10"}
	c.DefaultSpec = "fit=sideways"
	err := c.Validate()
	for _, want := range []string{"max_frames", "Bad Name", "presets.ok: width", "presets.x: preset", "default_spec: fit", `"default" is reserved`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want mention of %q", err, want)
		}
	}
	if _, err := New(c, nil); err == nil {
		t.Error("New accepted a bad config")
	}
}

func TestCheckRequestExtractBounds(t *testing.T) {
	e := testEngine(t)
	req, _ := parse(t, e, "extract=0,0,50,60")
	if err := req.CheckRequest(mInfo(100, 50, 1)); err == nil {
		t.Error("60 rows from a 50-row image accepted")
	} else {
		wantError(t, err, http.StatusBadRequest, CodeInvalidParameter)
	}
	if err := req.CheckRequest(mInfo(100, 50, 6)); err != nil { // on its side: 50x100 upright
		t.Error(err)
	}
}

// TestCheckOutput: what Process would refuse for this image's output is
// known from the probe, and named by variant when there are several.
func TestCheckOutput(t *testing.T) {
	e := testEngine(t)
	jpeg := model.Info{Format: "jpeg", Width: 800, Height: 600, Orientation: 1}
	for _, c := range []struct{ q, want string }{
		{"width=16384&height=16&fit=fill&format=webp", "output would be 16384x16, the limit for webp is 16383"},
		{"width=16383&height=16&fit=fill&format=webp", ""},
		{"width=16&height=16384&fit=fill&format=webp&rotate=90", "output would be 16384x16"},
		{"width=16&height=16384&fit=fill&format=png&rotate=90", ""},
		{"width=16384&format=webp", ""}, // inside never enlarges: 800x600
		{"variant=small:width=10&variant=wide:width=16384%3Bheight=10%3Bfit=fill%3Bformat=webp", "variant wide: output would be 16384x10"},
	} {
		req, err := parse(t, e, c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		err = e.CheckOutput(req, jpeg)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s refused: %v", c.q, err)
		case c.want != "" && err == nil:
			t.Errorf("%s accepted, want %q", c.q, c.want)
		case c.want != "":
			if got := wantError(t, err, http.StatusUnprocessableEntity, CodeTooLarge); !strings.HasPrefix(got.Message, c.want) {
				t.Errorf("%s: %q, want %q…", c.q, got.Message, c.want)
			}
		}
	}
}

// TestOutputCost: a result is bounded in pixels (frames included), and
// more tightly for the encoders nothing can interrupt, so that an upload of
// a few bytes cannot hold a worker for minutes. Refused from the probe, at
// upload, as Process would refuse it.
func TestOutputCost(t *testing.T) {
	tiny := model.Info{Format: "jpeg", Width: 16, Height: 16, Orientation: 1}
	anim := model.Info{Format: "gif", Width: 100, Height: 100, Orientation: 1, Pages: 50, Animated: true}
	check := func(e *Engine, info model.Info, q, want string) {
		t.Helper()
		req, err := parse(t, e, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		err = e.CheckOutput(req, info)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s refused: %v", q, err)
		case want != "" && err == nil:
			t.Errorf("%s accepted, want %q", q, want)
		case want != "":
			if got := wantError(t, err, http.StatusUnprocessableEntity, CodeTooLarge); !strings.Contains(got.Message, want) {
				t.Errorf("%s: %q, want %q", q, got.Message, want)
			}
		}
	}
	e := testEngine(t)
	for _, c := range []struct {
		info    model.Info
		q, want string
	}{
		{tiny, "width=16384&height=16384&fit=fill&format=png", "output would be 16384x16384 (268.4M pixels), the limit is 100.0M pixels"},
		{tiny, "width=10000&height=10000&fit=fill&format=png", ""},
		{tiny, "width=10001&height=10000&fit=fill&format=jpeg", "the limit is 100.0M pixels"},
		{tiny, "width=16384&height=16384&fit=fill&format=heif", "the limit is 100.0M pixels"},
		{tiny, "width=7000&height=7000&fit=fill&format=heif", "the heif encoder cannot be interrupted, so it is given at most 40.0M pixels"},
		{tiny, "width=5712&height=4284&fit=fill&format=heif", ""}, // a phone's 24 MP HEIC, rotated or re-encoded
		// The others' time caps are over what their memory allows.
		{tiny, "width=8000&height=8000&fit=fill&format=avif", "the output, as the avif encoder holds it, would take 1220 MiB of memory, the limit is 1024 MiB"},
		{tiny, "width=7000&height=7000&fit=fill&format=avif", ""},
		{tiny, "width=5000&height=5000&fit=fill&format=gif", ""},
		{tiny, "width=12000&height=8000&fit=fill&format=webp", "the output, as the webp encoder holds it, would take 1831 MiB of memory, the limit is 1024 MiB"},
		{tiny, "width=7000&height=7000&fit=fill&format=webp", ""},
		{tiny, "width=12000&height=8000&fit=fill&format=jpeg", ""}, // JPEG encodes strip by strip
		// An animation's frames wait decoded, 4 bytes a pixel; only the
		// frame being encoded takes 20.
		{anim, "width=1400&height=1400&fit=fill", "output would be 1400x1400 in 50 frames (98.0M pixels): the gif encoder"},
		{anim, "width=1300&height=1300&fit=fill", ""},
		{model.Info{Format: "gif", Width: 640, Height: 480, Orientation: 1, Pages: 200, Animated: true}, "preset=web", ""},
		{model.Info{Format: "gif", Width: 640, Height: 480, Orientation: 1, Pages: 200, Animated: true}, "", ""}, // the default spec: WebP
		// Variants add up: each passes, together they do not.
		{tiny, "variant=a:width=8000%3Bheight=8000%3Bfit=fill%3Bformat=png&variant=b:width=7000%3Bheight=7000%3Bfit=fill%3Bformat=png", "the variants' outputs add up to 113.0M pixels"},
		{tiny, "variant=a:width=5000%3Bheight=5000%3Bfit=fill%3Bformat=heif&variant=b:width=5000%3Bheight=5000%3Bfit=fill%3Bformat=heif", "would take about 1m15s together, more than 1m0s"},
		{tiny, "variant=a:width=5000%3Bheight=5000%3Bfit=fill%3Bformat=heif&variant=b:width=3000%3Bheight=3000%3Bfit=fill%3Bformat=avif", ""},
		// A cover crop that holds its scaled image whole before cropping
		// (a smart crop): 1x100 covering 4000x4000 is 4000x400000.
		{model.Info{Format: "png", Width: 1, Height: 100, Orientation: 1}, "width=4000&height=4000&fit=cover&gravity=smart", "the image scaled by fit=cover before its crop would take"},
		{model.Info{Format: "png", Width: 1, Height: 100, Orientation: 1}, "width=4000&height=4000&fit=cover", ""}, // streamed: only the crop is computed
	} {
		check(e, c.info, c.q, c.want)
	}
	// Whoever raises the timeout wants larger images: the caps follow.
	slow := testEngine(t, func(c *Config) { c.Timeout = 5 * time.Minute })
	check(slow, tiny, "width=7000&height=7000&fit=fill&format=heif", "")
	// A short timeout does not lower them: a render that overruns it a
	// little is no harm, and tests provoke timeouts with tiny ones.
	quick := testEngine(t, func(c *Config) { c.Timeout = time.Second })
	check(quick, tiny, "width=6000&height=6000&fit=fill&format=heif", "")
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "max_output_pixels") {
		t.Errorf("a zero max_output_pixels: %v", err)
	}
}

// Error() is public text only; the cause is there for logs.
func TestErrorText(t *testing.T) {
	e := &Error{Status: 422, Code: CodeUndecodable, Message: "the jpeg image could not be decoded", Err: &vipsError{op: "thumbnail", text: "VipsJpeg: Premature end of JPEG file"}}
	if e.Error() != "the jpeg image could not be decoded" {
		t.Errorf("Error() = %q", e.Error())
	}
	if v := e.LogValue().String(); !strings.Contains(v, "Premature end") || !strings.Contains(v, "422") {
		t.Errorf("LogValue = %s", v)
	}
	if !e.Permanent() || (&Error{Status: 504}).Permanent() || (&Error{Status: 500}).Permanent() {
		t.Error("Permanent")
	}
}
