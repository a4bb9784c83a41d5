// Package loglimit keeps an outage from flooding the log: a line a second
// goes through, and the next one says how many were left out.
package loglimit

import (
	"sync"
	"time"
)

// Limiter lets one line a second through; the zero value is ready.
type Limiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Allow reports whether to log now and, when so, how many lines were left
// out since the last one that was.
func (l *Limiter) Allow() (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.last) < time.Second {
		l.suppressed++
		return false, 0
	}
	l.last, suppressed, l.suppressed = now, l.suppressed, 0
	return true, suppressed
}
