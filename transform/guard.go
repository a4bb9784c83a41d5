package transform

/*
#include "vips_bridge.h"
*/
import "C"

import (
	"context"
	"time"
	"unsafe"
)

// guard is the C-side kill switch for one render: raised when ctx ends
// (cancel or deadline), read by libvips between tiles. It lives in C
// memory because libvips holds it while Go may move on.
type guard struct {
	g    *C.ip_guard
	stop func() bool
	done chan struct{}
}

func newGuard(ctx context.Context) *guard {
	g := (*C.ip_guard)(C.calloc(1, C.sizeof_ip_guard))
	deadline := int64(1) << 62
	if d, ok := ctx.Deadline(); ok {
		deadline = int64(C.g_get_monotonic_time()) + time.Until(d).Microseconds()
	}
	g.deadline = C.gint64(deadline)
	gd := &guard{g: g, done: make(chan struct{})}
	gd.stop = context.AfterFunc(ctx, func() {
		C.ip_guard_cancel(g)
		close(gd.done)
	})
	return gd
}

// fired reports whether the guard has killed the render it watched.
func (gd *guard) fired() bool { return C.ip_guard_fired(gd.g) != 0 }

// release frees the guard once the AfterFunc can no longer touch it.
func (gd *guard) release() {
	if !gd.stop() {
		<-gd.done
	}
	C.free(unsafe.Pointer(gd.g))
}
