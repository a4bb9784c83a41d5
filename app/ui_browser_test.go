package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/imgpipe/imgpipe/internal/apptest"
	"golang.org/x/image/webp"
)

const uiChromium = "/usr/bin/chromium"

// TestBrowserUploadFlow drives the web UI in a real Chromium against the
// real app: pick two images and a text file, ask for width=200 as WebP,
// upload, and follow the cards until the images are done and the text file
// is refused. The results the page shows are fetched and checked.
//
// IMGPIPE_UI_SCREENSHOT=path.png keeps a copy of the final screenshot.
func TestBrowserUploadFlow(t *testing.T) {
	needBrowser(t)
	base := apptest.Start(t, apptest.Config(t)).URL
	files := writeUIFixtures(t, t.TempDir())
	ctx, console := newUIBrowser(t)

	run := uiSteps(t, ctx, console)
	eval := func(what, js string) []byte {
		t.Helper()
		b, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return b
	}

	run("open the page", chromedp.Navigate(base+"/"))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.ready === "true"`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("page never got ready: %v\nconsole:\n%s", err, console)
	}
	presets := string(eval("presets", `JSON.stringify([...document.querySelectorAll('[data-testid=preset-option] input')].map(i => i.value))`))
	if !strings.Contains(presets, "thumb") {
		t.Errorf("preset list %s lacks the default preset thumb", presets)
	}

	run("pick files and a transform",
		chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{files.png, files.jpeg, files.text}),
		chromedp.SendKeys(chromedp.ID("width"), "200"),
		chromedp.SetValue(chromedp.ID("format"), "webp"),
		chromedp.WaitEnabled(chromedp.ID("upload-button")),
	)
	if n := string(eval("selection", `String(document.querySelectorAll('[data-testid=selected-file]').length)`)); n != `"3"` {
		t.Fatalf("%s files listed as selected, want 3", n)
	}
	if preview := string(eval("spec preview", `document.getElementById('spec-preview').textContent`)); !strings.Contains(preview, "width=200") || !strings.Contains(preview, "format=webp") {
		t.Errorf("spec preview %s does not show width=200&format=webp", preview)
	}
	run("upload", chromedp.Click(chromedp.ID("upload-button")))
	if focused := string(eval("focus", `document.activeElement.id`)); focused != `"file-input"` {
		t.Errorf("after Upload the focus is on %s, want the file picker", focused)
	}

	// Follow the cards until every file has its final state.
	type card struct {
		Name, Status, ID, Error, Before, After string
		Src                                    []string
		Natural                                [][2]int
		Complete                               bool
	}
	const readCards = `[...document.querySelectorAll('#uploads [data-testid=image-card]')].map(c => {
		const imgs = [...c.querySelectorAll('[data-testid=result-img]')];
		const text = (sel) => { const e = c.querySelector(sel); return e ? e.textContent : ''; };
		return {
			Name: c.dataset.filename, Status: c.dataset.status, ID: c.dataset.id || '',
			Error: text('[data-testid=error]'), Before: text('[data-testid=before]'), After: text('[data-testid=after]'),
			Src: imgs.map(i => i.src), Natural: imgs.map(i => [i.naturalWidth, i.naturalHeight]),
			Complete: imgs.every(i => i.complete),
		};
	})`
	var cards map[string]card
	deadline := time.Now().Add(2 * time.Minute)
	for {
		list, err := chromedp.Run(ctx, chromedp.Evaluate[[]card](readCards))
		if err != nil {
			t.Fatalf("read cards: %v", err)
		}
		cards = map[string]card{}
		for _, c := range list {
			cards[c.Name] = c
		}
		img1, img2, txt := cards[filepath.Base(files.png)], cards[filepath.Base(files.jpeg)], cards[filepath.Base(files.text)]
		if img1.Status == "failed" || img2.Status == "failed" {
			t.Fatalf("an image failed: %+v", list)
		}
		if len(list) == 3 && img1.Status == "done" && img2.Status == "done" && img1.Complete && img2.Complete &&
			txt.Status == "refused" && txt.Error != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cards did not settle: %+v\nconsole:\n%s", list, console)
		}
		time.Sleep(200 * time.Millisecond)
	}

	refused := cards[filepath.Base(files.text)]
	t.Logf("text file refused next to its name: %q", refused.Error)
	if !strings.Contains(refused.Error, "415") {
		t.Errorf("refusal of the text file %q does not show the 415", refused.Error)
	}

	for _, name := range []string{filepath.Base(files.png), filepath.Base(files.jpeg)} {
		c := cards[name]
		if c.ID == "" || len(c.Src) != 1 {
			t.Fatalf("%s: card %+v, want an id and one result image", name, c)
		}
		// The browser decoded the result it shows.
		if w, h := c.Natural[0][0], c.Natural[0][1]; w < 1 || w > 200 || h < 1 {
			t.Errorf("%s: the page shows a %dx%d result, want 1..200 px wide", name, w, h)
		}
		if !strings.Contains(c.After, "WEBP") || !strings.Contains(c.After, "200×") || c.Before == "" {
			t.Errorf("%s: before %q, after %q: want the WEBP 200×… result and the original", name, c.Before, c.After)
		}

		// Fetch what the page shows, as any client would, and read it.
		resp, err := http.Get(c.Src[0])
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/webp" {
			t.Fatalf("%s: GET %s: %d %s", name, c.Src[0], resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		img, err := webp.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: result does not decode as WebP: %v (%d bytes, starts %.16q)", name, err, len(data), data)
		}
		w, h := img.Bounds().Dx(), img.Bounds().Dy()
		t.Logf("%s: %s -> WebP %dx%d, %d bytes (page: %s)", name, c.Before, w, h, len(data), c.After)
		if w < 1 || w > 200 || h < 1 {
			t.Errorf("%s: result is %dx%d, want at most 200 px wide", name, w, h)
		}
		if w != c.Natural[0][0] || h != c.Natural[0][1] {
			t.Errorf("%s: header says %dx%d, the browser decoded %dx%d", name, w, h, c.Natural[0][0], c.Natural[0][1])
		}
	}

	// Each card's "Last event" is its image's latest, by time, of those the
	// logger kept: the events that came before the upload's answer named
	// the image count, and a process's late batch does not win.
	for _, name := range []string{filepath.Base(files.png), filepath.Base(files.jpeg)} {
		id := cards[name].ID
		var shown, latest string
		settled := func() bool {
			var act struct {
				Events []struct {
					Event string
					Time  time.Time
				}
			}
			if err := json.Unmarshal(apptest.Get(t, base+"/v1/images/"+id+"/activity").Body, &act); err != nil || len(act.Events) == 0 {
				return false
			}
			last := act.Events[0]
			for _, ev := range act.Events[1:] {
				if !ev.Time.Before(last.Time) {
					last = ev
				}
			}
			latest = last.Event
			shown = string(eval("last event", `(e => e.hidden ? '' : e.textContent)(document.querySelector('#uploads [data-testid=image-card][data-id="`+id+`"] [data-testid=last-event]'))`))
			return strings.HasPrefix(shown, `"Last event `+latest+` `)
		}
		for deadline := time.Now().Add(30 * time.Second); !settled(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the card shows %s, want its latest event, %s", name, shown, latest)
			}
		}
		t.Logf("%s: %s (latest kept: %s)", name, shown, latest)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	shotPath := filepath.Join(t.TempDir(), "ui.png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shotPath, len(shot))
	if keep := os.Getenv("IMGPIPE_UI_SCREENSHOT"); keep != "" {
		if err := os.WriteFile(keep, shot, 0o644); err != nil {
			t.Errorf("keep screenshot: %v", err)
		}
	}

	// A fresh load lists the images under "Recent images" (GET /v1/images,
	// which reads the store: the saver may still be writing).
	run("reload", chromedp.Navigate(base+"/"))
	deadline = time.Now().Add(30 * time.Second)
	for {
		n := string(eval("recent", `String(document.querySelectorAll('#recent-list [data-testid=recent-card][data-status=done]').length)`))
		if n == `"2"` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recent list shows %s done images after a reload, want 2", n)
		}
		run("refresh recent", chromedp.Click(chromedp.ID("recent-refresh")))
		time.Sleep(time.Second)
	}

	for _, m := range console.exceptions() {
		t.Errorf("page exception: %s", m)
	}
}

// uiConsole collects what the page writes to its console.
type uiConsole struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

func (c *uiConsole) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var sb strings.Builder
	for _, m := range c.msgs {
		fmt.Fprintf(&sb, "  %s\n", m)
	}
	return sb.String()
}

func (c *uiConsole) exceptions() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if m.IsException() {
			out = append(out, m.String())
		}
	}
	return out
}

// newUIBrowser starts a headless Chromium with a fresh profile; it is
// closed (and waited for) when the test ends.
// needBrowser skips the test without Chromium, unless CI is set: there a
// missing browser is a failure.
func needBrowser(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(uiChromium); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("no browser at %s (set CI to make this a failure): %v", uiChromium, err)
		}
		t.Fatalf("CI is set but there is no browser at %s: %v", uiChromium, err)
	}
}

// uiSteps runs browser steps, failing the test with the page's console.
func uiSteps(t *testing.T, ctx context.Context, console *uiConsole) func(what string, steps ...chromedp.Action[chromedp.Void]) {
	return func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v\nconsole:\n%s", what, err, console)
		}
	}
}

func newUIBrowser(t *testing.T) (context.Context, *uiConsole) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(uiChromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit, before its profile is removed
	})
	con := &uiConsole{}
	msgs := chromedp.Console(ctx) // starts the browser
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			con.mu.Lock()
			con.msgs = append(con.msgs, m)
			con.mu.Unlock()
		}
	}()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`1`)); err != nil {
		t.Fatalf("start %s: %v", uiChromium, err)
	}
	return ctx, con
}

type uiFixtures struct{ png, jpeg, text string }

// writeUIFixtures writes a 640x480 PNG, an 800x600 JPEG and a text file.
func writeUIFixtures(t *testing.T, dir string) uiFixtures {
	t.Helper()
	gradient := func(w, h int) image.Image {
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x ^ y) & 0xff), 255})
			}
		}
		return img
	}
	f := uiFixtures{
		png:  filepath.Join(dir, "gradient.png"),
		jpeg: filepath.Join(dir, "photo.jpg"),
		text: filepath.Join(dir, "notes.txt"),
	}
	var pngBuf, jpegBuf bytes.Buffer
	if err := png.Encode(&pngBuf, gradient(640, 480)); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpegBuf, gradient(800, 600), &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{
		f.png:  pngBuf.Bytes(),
		f.jpeg: jpegBuf.Bytes(),
		f.text: []byte("These are notes, not an image.\n"),
	} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// TestBrowserRetryDefaultsAndLimits: the page says what an empty form
// means (the server's default transform), and that presets with none
// ticked are no request at all; checks the server's size limit before
// sending; does not offer an empty file again; lets a refused upload be
// tried again once the form is fixed, names downloads after the file, and
// keeps a long file name from pushing the selection off a phone's screen.
func TestBrowserRetryDefaultsAndLimits(t *testing.T) {
	needBrowser(t)
	dir := t.TempDir()
	files := writeUIFixtures(t, dir)
	var tiny bytes.Buffer
	if err := png.Encode(&tiny, image.NewGray(image.Rect(0, 0, 40, 30))); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "a-file-with-a-name-long-enough-to-overflow-a-phone-screen-twice-over.png")
	if err := os.WriteFile(small, tiny.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.png")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := apptest.Config(t)
	cfg.HTTP.MaxUploadBytes = 2000 // the tiny PNG fits, the fixtures do not
	base := apptest.Start(t, cfg).URL
	ctx, console := newUIBrowser(t)
	run := uiSteps(t, ctx, console)
	eval := func(what, js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return s
	}
	poll := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v\nconsole:\n%s", what, err, console)
		}
	}

	run("open the page on a phone", chromedp.EmulateViewport(375, 812), chromedp.Navigate(base+"/"))
	poll("the page", `document.body.dataset.ready === "true"`)
	if note := eval("default note", `(n => n.hidden ? '' : n.textContent)(document.getElementById('default-note'))`); !strings.Contains(note, cfg.Transform.DefaultSpec) {
		t.Errorf("empty form: note %q does not give the server's default %s", note, cfg.Transform.DefaultSpec)
	}
	// Presets with none ticked: no request to show, and no default either.
	run("choose presets", chromedp.Click(chromedp.ID("mode-preset")))
	if got := eval("preset preview", `(p => p.textContent + ' | ' + p.className + ' | ' + document.getElementById('default-note').hidden)(document.getElementById('spec-preview'))`); !strings.Contains(got, "Choose at least one preset") || !strings.Contains(got, "invalid") || !strings.HasSuffix(got, "| true") {
		t.Errorf("presets, none ticked: preview, its class and whether the default note is hidden: %q", got)
	}
	run("back to custom", chromedp.Click(chromedp.ID("mode-custom")))

	// An empty file: refused for what it is, and not offered again.
	run("upload an empty file", chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{empty}),
		chromedp.WaitEnabled(chromedp.ID("upload-button")), chromedp.Click(chromedp.ID("upload-button")))
	poll("the empty file's refusal", `!!document.querySelector('#uploads [data-testid=image-card][data-status=refused]')`)
	if got := eval("empty refusal", `(c => c.querySelector('[data-testid=error]').textContent + ' | ' + !!c.querySelector('[data-testid=retry]'))(document.querySelector('#uploads [data-testid=image-card]'))`); !strings.Contains(got, "400 empty_body") || !strings.HasSuffix(got, "| false") {
		t.Errorf("an empty file: error and whether Try again is offered: %q", got)
	}
	run("clear it", chromedp.Click(chromedp.ID("clear-finished")))

	// Over the limit: said before anything is sent.
	run("pick a file over the limit", chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{files.jpeg}),
		chromedp.WaitEnabled(chromedp.ID("upload-button")), chromedp.Click(chromedp.ID("upload-button")))
	if msg := eval("form message", `document.getElementById('form-message').textContent`); !strings.Contains(msg, "remove photo.jpg") {
		t.Errorf("a file over the limit: form says %q", msg)
	}
	if n := eval("cards", `String(document.querySelectorAll('#uploads [data-testid=image-card]').length)`); n != "0" {
		t.Errorf("%s cards for a file over the limit, want none", n)
	}
	run("clear the selection", chromedp.Click(chromedp.ID("clear-selection")))

	// A long name stays within a phone's width.
	run("pick a long-named file", chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{small}))
	if w := eval("selection width", `(l => l.scrollWidth + ' ' + l.clientWidth)(document.getElementById('selected-files'))`); func() bool {
		var scroll, client int
		_, _ = fmt.Sscan(w, &scroll, &client)
		return scroll > client
	}() {
		t.Errorf("the selected files overflow a 375 px screen (scroll and client width %s)", w)
	}

	// A transform the server refuses, then fixed and tried again.
	run("upload with a bad parameter",
		chromedp.Click(`details.more-options > summary`),
		chromedp.SendKeys(chromedp.ID("extra-params"), "fit=bogus"),
		chromedp.Click(chromedp.ID("upload-button")))
	poll("the refusal", `!!document.querySelector('#uploads [data-testid=image-card][data-status=refused] [data-testid=retry]')`)
	if e := eval("refusal", `document.querySelector('#uploads [data-testid=error]').textContent`); !strings.Contains(e, "400") || !strings.Contains(e, "fit") {
		t.Errorf("refusal shows %q, want the 400 about fit", e)
	}
	run("fix the form and try again",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('extra-params').value = ''`),
		chromedp.SendKeys(chromedp.ID("width"), "20"),
		chromedp.SetValue(chromedp.ID("format"), "webp"),
		chromedp.Click(`#uploads [data-testid=retry]`))
	poll("the retried upload to be done", `!!document.querySelector('#uploads [data-testid=image-card][data-status=done] [data-testid=result-img]')`)
	if n := eval("cards", `String(document.querySelectorAll('#uploads [data-testid=image-card]').length)`); n != "1" {
		t.Errorf("%s cards after a retry, want the one card", n)
	}
	dl := eval("download link", `(a => a ? a.getAttribute('download') + ' ' + a.href : '')(document.querySelector('#uploads [data-testid=link-download]'))`)
	name, href, _ := strings.Cut(dl, " ")
	if name != strings.TrimSuffix(filepath.Base(small), ".png")+".webp" || href == "" {
		t.Fatalf("download link %q, want the file's name with the result's extension, .webp", dl)
	}
	if focused := eval("focus", `document.activeElement.className`); focused != "card-title" {
		t.Errorf("after Try again the focus is on %q, want the card's title", focused)
	}
	resp, err := http.Get(href)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	img, err := webp.Decode(resp.Body)
	if err != nil || img.Bounds().Dx() != 20 || img.Bounds().Dy() != 15 || resp.Header.Get("Content-Type") != "image/webp" {
		t.Fatalf("the download: %s, %v; want a 20x15 WebP", resp.Header.Get("Content-Type"), err)
	}
	for _, m := range console.exceptions() {
		t.Errorf("page exception: %s", m)
	}
}

// TestBrowserRetriesAFailedImage: a card whose image failed for a reason
// of the moment (here a timeout) offers "Try again", which uploads the
// file again with the spec it was sent with, and the server queues it for
// another run.
func TestBrowserRetriesAFailedImage(t *testing.T) {
	needBrowser(t)
	files := writeUIFixtures(t, t.TempDir())
	cfg := apptest.Config(t)
	// Every render runs out of time: PNG, encoded strip by strip under the
	// kill flag (timesOutSpec). The default spec, WebP, compresses the
	// whole frame at once, and its render of this photo escaped a 1 ms
	// timeout now and then (more often under load): its run ended done.
	cfg.Transform.Timeout = time.Millisecond
	cfg.NATS.Retry.MaxDeliver = 2
	cfg.NATS.Retry.Backoff = []time.Duration{50 * time.Millisecond}
	base := apptest.Start(t, cfg).URL
	ctx, console := newUIBrowser(t)
	run := uiSteps(t, ctx, console)
	poll := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v\nconsole:\n%s", what, err, console)
		}
	}
	run("open the page", chromedp.Navigate(base+"/"))
	poll("the page", `document.body.dataset.ready === "true"`)
	run("upload as PNG", chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{files.jpeg}),
		chromedp.SetValue(chromedp.ID("format"), "png"),
		chromedp.WaitEnabled(chromedp.ID("upload-button")), chromedp.Click(chromedp.ID("upload-button")))
	poll("the card to offer a retry of the failure",
		`!!document.querySelector('#uploads [data-testid=image-card] [data-testid=retry-failed]')`)
	// Record every status the card shows from now on.
	run("watch the card", chromedp.Evaluate[chromedp.Void](`(c => {
		window.statuses = [];
		new MutationObserver(() => window.statuses.push(c.dataset.status)).observe(c, { attributes: true, attributeFilter: ['data-status'] });
	})(document.querySelector('#uploads [data-testid=image-card]'))`))
	run("try again", chromedp.Click(`#uploads [data-testid=retry-failed]`))
	poll("the note that it is queued again", `Array.from(document.querySelectorAll('#uploads [data-testid=note]')).some(n => !n.hidden && n.textContent.includes('another try'))`)
	var page struct{ Images []struct{ ID string } }
	if err := json.Unmarshal(apptest.Get(t, base+"/v1/images?limit=5").Body, &page); err != nil || len(page.Images) != 1 {
		t.Fatalf("listing: %v %+v", err, page)
	}
	id := page.Images[0].ID
	apptest.Eventually(t, "the image's second run", func() bool {
		return apptest.Get(t, base+"/v1/images/"+id).JSON(t)["retries"] == float64(1)
	})

	// The new run fails too (every render runs out of time): the card
	// follows it there, and shows its error and a Try again once more.
	// Once in CI (a full run of every package at once) the card had not
	// shown that failure a minute later: the run had ended done, its WebP
	// render having escaped the timeout (TestRequeuedRunAlwaysEnds). The
	// server's outcome is checked first, so that a failure says which
	// side it is on.
	serverDone := false
	for deadline := time.Now().Add(60 * time.Second); !serverDone && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rec := apptest.Get(t, base+"/v1/images/"+id).JSON(t)
		serverDone = rec["retries"] == float64(1) && rec["status"] == "failed"
	}
	if !serverDone {
		t.Fatalf("the server did not end the image's second run failed within a minute\nrecord: %s\nactivity: %s",
			apptest.Get(t, base+"/v1/images/"+id).Body, apptest.Get(t, base+"/v1/images/"+id+"/activity").Body)
	}
	poll("the second run's failure", `(c => c.dataset.status === 'failed' && !c.querySelector('[data-testid=error]').hidden &&
		!!c.querySelector('[data-testid=links]:not([hidden]) [data-testid=retry-failed]'))(document.querySelector('#uploads [data-testid=image-card]'))`)
	statuses, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.statuses`))
	if err != nil {
		t.Fatalf("statuses: %v", err)
	}
	// From the upload on (before it, a poll may set the old failure
	// again), the old run never shows: the new one, then its failure.
	after := statuses[max(0, slices.Index(statuses, "uploading")):]
	if f := slices.Index(after, "failed"); len(after) == 0 || after[0] != "uploading" || f < 0 ||
		!slices.Contains(after[:f], "queued") && !slices.Contains(after[:f], "processing") || slices.Contains(after[f:], "processing") {
		t.Errorf("after Try again the card showed %v, want uploading, the new run queued or processing, then failed", statuses)
	}
	if e, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#uploads [data-testid=error]').textContent`)); err != nil || !strings.Contains(e, "timeout") {
		t.Errorf("the second failure shows %q (%v), want its timeout", e, err)
	}
	if ex := console.exceptions(); len(ex) > 0 {
		t.Errorf("page exceptions: %v", ex)
	}
}
