package roles

import (
	"context"

	"github.com/imgpipe/imgpipe/bus"
)

// stagedAs reads key from the stage, checked against digest (the SHA-256
// in hex its record names; "" checks nothing) where the stage may answer
// from memory (bus.CheckedStage): a result may be rendered again by
// another build, whose bytes differ, while this process still holds the
// first render. Originals need no check: their key comes from their
// digest.
func stagedAs(ctx context.Context, b bus.Bus, key, digest string) ([]byte, error) {
	if cs, ok := b.Stage().(bus.CheckedStage); ok && digest != "" {
		return cs.GetChecked(ctx, key, digest)
	}
	return b.Stage().Get(ctx, key)
}
