package store

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// Kinds of store a URL can name.
const (
	KindLocal = "local" // files and bbolt under one directory (store/local)
	KindMongo = "mongo" // MongoDB with GridFS (store/mongo)
)

// Location is what a store URL names.
type Location struct {
	Kind string
	// Dir is the local store's absolute directory; empty means the default
	// directory under the data directory.
	Dir string
}

// ParseURL reads a store URL (see Config.URL). It checks the shape only; a
// MongoDB URL is fully parsed by the driver when the store opens. Errors
// never quote a MongoDB URL, which may carry a password.
func ParseURL(rawURL string) (Location, error) {
	if strings.TrimSpace(rawURL) == "" {
		return Location{Kind: KindLocal}, nil
	}
	scheme, _, ok := strings.Cut(rawURL, ":")
	if !ok {
		return Location{}, fmt.Errorf("store: URL %q has no scheme (want local:, file:, mongodb: or mongodb+srv:)", rawURL)
	}
	switch strings.ToLower(scheme) {
	case "mongodb", "mongodb+srv":
		if !strings.HasPrefix(rawURL[len(scheme):], "://") {
			return Location{}, errors.New("store: a MongoDB URL starts with mongodb:// or mongodb+srv://")
		}
		return Location{Kind: KindMongo}, nil
	case "local", "file":
		return parseLocal(rawURL)
	default:
		return Location{}, fmt.Errorf("store: unknown URL scheme %q (want local:, file:, mongodb: or mongodb+srv:)", scheme)
	}
}

// parseLocal accepts "local:", "local://" and "local:///abs/path" (and the
// same with file:). Relative paths are refused: they would depend on the
// working directory of whichever process opens the store.
func parseLocal(rawURL string) (Location, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Location{}, fmt.Errorf("store: %w", err)
	}
	switch {
	case u.Opaque != "":
		return Location{}, fmt.Errorf("store: %q: the path must be absolute, as in %s:///abs/path", rawURL, u.Scheme)
	case u.Host != "" || u.User != nil:
		return Location{}, fmt.Errorf("store: %q: a local store has no host; use %s:///abs/path", rawURL, u.Scheme)
	case u.RawQuery != "" || u.Fragment != "":
		return Location{}, fmt.Errorf("store: %q: a local store takes no query or fragment", rawURL)
	case u.Path == "" && u.Scheme == "local":
		return Location{Kind: KindLocal}, nil
	case path.Clean("/"+u.Path) == "/":
		return Location{}, fmt.Errorf("store: %q: name a directory, as in %s:///abs/path", rawURL, u.Scheme)
	}
	return Location{Kind: KindLocal, Dir: path.Clean(u.Path)}, nil
}
