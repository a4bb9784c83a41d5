package web

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// uploadBudget bounds the upload bytes the process holds at once, across
// every request: an upload is read whole before it is checked and staged,
// so without a bound enough large uploads at once would take more memory
// than the machine has, and the kernel would kill the process with every
// upload in it. Past the bound an upload is refused with 503 and
// Retry-After: the client tries again, and what was accepted is safe.
type uploadBudget struct {
	limit int64
	used  atomic.Int64
	held  prometheus.Gauge // used, for /metrics
}

// budgetChunk is how much a body reserves at a time: a request holds at
// most a chunk more than it has read.
const budgetChunk = 256 << 10

// take reserves n bytes, or reports that the budget cannot spare them.
func (b *uploadBudget) take(n int64) bool {
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	b.held.Add(float64(n))
	return true
}

// give returns n bytes taken earlier.
func (b *uploadBudget) give(n int64) {
	b.used.Add(-n)
	b.held.Sub(float64(n))
}

// budgetSpent ends the read of a body the budget cannot hold; the client
// gets 503 with codeBusy (bodyError).
type budgetSpent struct{ limit int64 }

const codeBusy = "busy"

func (e *budgetSpent) Error() string {
	return fmt.Sprintf("the server holds as many uploads as it may at once (%d bytes, http.max_inflight_upload_bytes); try again shortly", e.limit)
}

// budgetedBody reads a request body no further than what it has reserved,
// reserving more a chunk at a time.
type budgetedBody struct {
	io.ReadCloser
	b          *uploadBudget
	held, read int64
}

func (r *budgetedBody) Read(p []byte) (int, error) {
	if r.read == r.held {
		if !r.b.take(budgetChunk) {
			return 0, &budgetSpent{r.b.limit}
		}
		r.held += budgetChunk
	}
	n, err := r.ReadCloser.Read(p[:min(int64(len(p)), r.held-r.read)])
	r.read += int64(n)
	return n, err
}

// withUploadBudget makes an upload handler's body count against the
// budget until the handler returns, when the bytes it read are no longer
// held (they are staged, or refused).
//
// The request's own body is put back when the handler returns, before a
// refusal is written: net/http recognizes an unread "Expect: 100-continue"
// body by its type, and then answers at once and closes the connection.
// Behind a wrapper it would instead wait to discard the body the client
// is holding back until it hears 100 Continue: neither would speak.
func (a *API) withUploadBudget(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		orig := r.Body
		body := &budgetedBody{ReadCloser: orig, b: a.budget}
		r.Body = body
		defer func() {
			r.Body = orig
			a.budget.give(body.held)
		}()
		return next(c)
	}
}
