package store_test

import (
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/store"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want store.Location
	}{
		{"", store.Location{Kind: store.KindLocal}},
		{"local:", store.Location{Kind: store.KindLocal}},
		{"local://", store.Location{Kind: store.KindLocal}},
		{"local:///var/lib/imgpipe", store.Location{Kind: store.KindLocal, Dir: "/var/lib/imgpipe"}},
		{"LOCAL:///a/b/../c/", store.Location{Kind: store.KindLocal, Dir: "/a/c"}},
		{"file:///srv/store", store.Location{Kind: store.KindLocal, Dir: "/srv/store"}},
		{"mongodb://user:pw@db1:27017,db2:27017/imgpipe?replicaSet=rs0", store.Location{Kind: store.KindMongo}},
		{"mongodb+srv://cluster.example.com/", store.Location{Kind: store.KindMongo}},
	} {
		got, err := store.ParseURL(tc.url)
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tc.url, got, err, tc.want)
		}
		if err := (store.Config{URL: tc.url}).Validate(); err != nil {
			t.Errorf("Validate(%q): %v", tc.url, err)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, url := range []string{
		"/var/lib/imgpipe",   // no scheme
		"s3://bucket/prefix", // unknown scheme
		"local:relative/dir",
		"local://host/dir",
		"local:///",
		"file:",
		"file:///dir?x=1",
		"mongodb:db1",
		"mongodb+srv:cluster",
	} {
		if _, err := store.ParseURL(url); err == nil {
			t.Errorf("ParseURL(%q): no error", url)
		}
		if err := (store.Config{URL: url}).Validate(); err == nil {
			t.Errorf("Validate(%q): no error", url)
		}
	}
	// A MongoDB URL's password never reaches an error message.
	_, err := store.ParseURL("mongodb:user:secret@host")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v shows the password", err)
	}
}
