package natsbus

import "time"

// SetConsumerCheckEvery shortens the consumer existence check for a test
// and returns the undo.
func SetConsumerCheckEvery(d time.Duration) (undo func()) {
	old := consumerCheckEvery.Swap(int64(d))
	return func() { consumerCheckEvery.Store(old) }
}

// PullExpiry is how long one pull request or NoPrefetch ask lasts.
const PullExpiry = pullExpiry
