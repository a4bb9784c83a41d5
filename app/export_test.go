package app

import "time"

// SetBindingCheckEvery shortens how often running processes read the store
// binding; the returned func restores it.
func SetBindingCheckEvery(d time.Duration) func() {
	old := bindingCheckEvery
	bindingCheckEvery = d
	return func() { bindingCheckEvery = old }
}
