// Package storeopen opens the store a URL names. It is apart from package
// store because it imports the implementations, which import store.
package storeopen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/store/local"
	"github.com/imgpipe/imgpipe/store/mongo"
)

// Open opens the store rawURL names (see store.Config): the local store for
// an empty URL (in <dataDir>/store), "local:" (the same), "local:///abs/path"
// or "file:///abs/path"; MongoDB for "mongodb://" and "mongodb+srv://". ctx
// bounds connecting; log may be nil.
func Open(ctx context.Context, rawURL string, dataDir string, log *slog.Logger) (store.Store, error) {
	loc, err := store.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch loc.Kind {
	case store.KindLocal:
		dir := loc.Dir
		if dir == "" {
			if dataDir == "" {
				return nil, errors.New("store: no data directory for the default local store")
			}
			dir = filepath.Join(dataDir, "store")
		}
		return local.Open(dir, log)
	case store.KindMongo:
		return mongo.Open(ctx, rawURL, log)
	}
	return nil, fmt.Errorf("store: no implementation for %q stores", loc.Kind)
}
