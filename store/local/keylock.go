package local

import "sync"

// keyLocks serializes the writers of one key while letting writers of
// different keys run (and share commits) at once. PutBlob needs it because
// moving a blob between the database and a file takes two steps that two
// concurrent writers could otherwise interleave (see PutBlob).
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	users int // holders and waiters; the entry goes when none is left
}

// lock waits for key and returns the function that releases it.
func (l *keyLocks) lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*keyLock{}
	}
	kl := l.locks[key]
	if kl == nil {
		kl = &keyLock{}
		l.locks[key] = kl
	}
	kl.users++
	l.mu.Unlock()

	kl.Lock()
	return func() {
		kl.Unlock()
		l.mu.Lock()
		if kl.users--; kl.users == 0 {
			delete(l.locks, key)
		}
		l.mu.Unlock()
	}
}
