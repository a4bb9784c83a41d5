package store

import (
	"crypto/rand"
	"encoding/hex"
)

// NewIdentity makes a store's identity (see Store.Identity): random, made
// once, when a store is first opened, and kept with its data.
func NewIdentity() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand's documented contract)
	return hex.EncodeToString(b)
}
