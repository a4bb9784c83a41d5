package app_test

import (
	"bytes"
	"image/png"
	"net/url"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/apptest"
	"github.com/imgpipe/imgpipe/internal/ferrettest"
	"github.com/imgpipe/imgpipe/internal/fixtures"
)

// A transform that needs a blob only the store holds (here a watermark
// image, taken off the stage once saved) waits out a store outage holding
// the image, as it waits out the bus's: the outage spends none of its
// attempts. MongoDB is really away: FerretDB stopped, then started again
// on the same files and address.
func TestStoreOutageSpendsNoAttempt(t *testing.T) {
	dir := t.TempDir()
	uri, stop, err := ferrettest.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stop() }()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	cfg := apptest.Config(t)
	// Without a server, the driver looks for one for 30 s by default
	// before each failure.
	cfg.Store.URL = uri + "imgpipe?serverSelectionTimeoutMS=500"
	r := apptest.Start(t, cfg)

	logo := upload(t, r.URL, "width=40&format=png", fixtures.PNG(40, 40, 3, true))
	waitOK(t, r.URL, logo)
	waitSaved(t, r.URL, logo)

	stop()
	photo := upload(t, r.URL, "width=200&format=png&watermark_image="+logo, fixtures.JPEG(400, 300, 4))
	apptest.Eventually(t, "a transform worker holding the image", func() bool {
		return bytes.Contains(apptest.Get(t, r.URL+"/metrics").Body, []byte("imgpipe_transform_outage_waits 1"))
	})
	time.Sleep(time.Second) // failed reads, each of which used to be an attempt
	// save2db cannot record the photo meanwhile, and says so.
	apptest.Eventually(t, "save2db's failed attempts counted", func() bool {
		return bytes.Contains(apptest.Get(t, r.URL+"/metrics").Body, []byte(`imgpipe_messages_handled_total{outcome="retried",role="save2db"}`))
	})
	if _, stop, err = ferrettest.StartOn(dir, u.Host); err != nil {
		t.Fatal(err)
	}

	res := waitOK(t, r.URL, photo)
	img, err := png.Decode(bytes.NewReader(res.Body))
	if err != nil || img.Bounds().Dx() != 200 || img.Bounds().Dy() != 150 {
		t.Fatalf("result: %v %v", err, img.Bounds())
	}
	rec := apptest.Get(t, r.URL+"/v1/images/"+photo).JSON(t)
	if rec["status"] != "done" || rec["attempts"] != float64(1) {
		t.Fatalf("record %v: want done on the first attempt", rec)
	}
	if got := apptest.Get(t, r.URL+"/metrics").Body; !bytes.Contains(got, []byte("imgpipe_transform_outage_waits 0")) {
		t.Error("the outage wait is still counted")
	}
}

// TestUploadsDuringStoreOutageAnswerAtOnce: the first upload after the
// store went away waits out the store's timeout (MongoDB's server
// selection, 5 s) for its duplicate check, and is accepted without it;
// uploads in the next seconds skip the check rather than wait as long.
func TestUploadsDuringStoreOutageAnswerAtOnce(t *testing.T) {
	uri, stop, err := ferrettest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	cfg := apptest.Config(t)
	cfg.Store.URL = uri + "imgpipe"
	r := apptest.Start(t, cfg)
	stop()

	first := time.Now()
	if resp := r.Upload(t, "width=20", fixtures.JPEG(40, 30, 401)); resp.Status != 202 {
		t.Fatalf("first upload during the outage: %d %s", resp.Status, resp.Body)
	}
	waited := time.Since(first)
	next := time.Now()
	if resp := r.Upload(t, "width=20", fixtures.JPEG(40, 30, 402)); resp.Status != 202 {
		t.Fatalf("next upload during the outage: %d %s", resp.Status, resp.Body)
	}
	// Not a speed threshold: the store's timeout is 5 s, and the second
	// upload must not have waited for it.
	if took := time.Since(next); took > waited/2 {
		t.Fatalf("the next upload took %v, the first %v: it waited for the store again", took, waited)
	}
}
