package transform

import "C"

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// GLib log levels (glib/gmessages.h).
const (
	glibError    = 1 << 2
	glibCritical = 1 << 3
	glibWarning  = 1 << 4
	glibMessage  = 1 << 5
	glibInfo     = 1 << 6
)

// vipsLogger receives libvips' GLib messages: it is process-wide because
// GLib's handler is, and the most recent Engine's logger wins.
var vipsLogger atomic.Pointer[slog.Logger]

// A corrupt file can make libjpeg warn hundreds of times; past this many
// messages a second the rest are counted and reported as one line.
const vipsLogBurst = 50

var logLimit struct {
	sync.Mutex
	window     time.Time
	count      int
	suppressed int
}

//export goVipsLog
func goVipsLog(domain *C.char, level C.int, message *C.char) {
	log := vipsLogger.Load()
	if log == nil {
		return
	}
	lvl := slog.LevelDebug
	switch {
	case level&(glibError|glibCritical) != 0:
		lvl = slog.LevelError
	case level&glibWarning != 0:
		lvl = slog.LevelWarn
	case level&(glibMessage|glibInfo) != 0:
		lvl = slog.LevelInfo
	}
	text := strings.TrimSpace(C.GoString(message))
	if benign(text) {
		lvl = slog.LevelDebug
	}
	if !log.Enabled(context.Background(), lvl) {
		return
	}
	if suppressed, ok := logAllowed(time.Now()); !ok {
		return
	} else if suppressed > 0 {
		log.Warn("libvips messages suppressed", "count", suppressed)
	}
	log.Log(context.Background(), lvl, text, "source", "libvips", "domain", C.GoString(domain))
}

// benign tells the warnings libvips gives for ordinary inputs, which say
// nothing an operator could act on: logged as warnings, they would come
// with every image of a common kind. libheif writes an nclx colour
// description into every AVIF, its own included, and libvips warns, several
// times per read, that it goes by the ICC profile or sRGB instead.
func benign(message string) bool {
	return strings.HasSuffix(message, "ignoring nclx profile")
}

// logAllowed applies the per-second budget; it returns how many messages
// the previous window dropped when a new window starts.
func logAllowed(now time.Time) (int, bool) {
	logLimit.Lock()
	defer logLimit.Unlock()
	prev := 0
	if now.Sub(logLimit.window) >= time.Second {
		prev = logLimit.suppressed
		logLimit.window, logLimit.count, logLimit.suppressed = now, 0, 0
	}
	logLimit.count++
	if logLimit.count > vipsLogBurst {
		logLimit.suppressed++
		return 0, false
	}
	return prev, true
}
