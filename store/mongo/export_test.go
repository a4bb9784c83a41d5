package mongo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
)

// What a writer whose lease ran out does when it carries on, for tests of
// the fence (lease.go): a stalled writer cannot be made to outlive its
// lease on cue, so the test runs its steps as that writer, token owner.

// UploadAs uploads as owner, without the lease.
func (s *Store) UploadAs(ctx context.Context, key string, data []byte, owner string) error {
	sum := sha256.Sum256(data)
	return s.upload(ctx, key, data, hex.EncodeToString(sum[:]), owner)
}

// PutLeasedAs runs the writes PutBlob makes under a lease, as owner, whose
// lease is gone.
func (s *Store) PutLeasedAs(ctx context.Context, key string, data []byte, owner string) error {
	sum := sha256.Sum256(data)
	return s.putLeased(ctx, &lease{s: s, key: key, owner: owner}, data, hex.EncodeToString(sum[:]))
}
