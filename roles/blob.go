package roles

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/imgpipe/imgpipe/bus"
)

// stagedAs reads key from the stage, checked against digest (the SHA-256
// in hex its record names; "" checks nothing). A result may be rendered
// again by another build, whose bytes differ, while this process still
// holds the first render in its cache (bus.Stage): bytes that do not
// match are read again from the stage's authoritative copy, which the
// record describes. Those are returned whatever they hash to: a worker
// that outlived its deadline may have staged its render after the record
// was written, a race of the stage itself, not of the cache. Originals
// need no check: their key comes from their digest.
func stagedAs(ctx context.Context, b bus.Bus, key, digest string) ([]byte, error) {
	data, err := b.Stage().Get(ctx, key)
	if err != nil || digest == "" || sha256Hex(data) == digest {
		return data, err
	}
	return b.Stage().GetLatest(ctx, key)
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
