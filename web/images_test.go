package web

import (
	"testing"
	"time"
)

// A wait in plain seconds is capped before it becomes a Duration: 1e10
// seconds overflowed into a short wait, 18446744074 into almost none.
func TestParseWaitCaps(t *testing.T) {
	a := &API{cfg: Config{MaxWait: time.Minute}}
	for in, want := range map[string]time.Duration{
		"10000000000": time.Minute, "18446744074": time.Minute, "9223372036": time.Minute,
		"30": 30 * time.Second, "2m": time.Minute, "1500ms": 1500 * time.Millisecond, "": 0,
	} {
		if got, err := a.parseWait(in); err != nil || got != want {
			t.Errorf("wait=%s: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-5", "soon", "99999999999999999999999"} {
		if _, err := a.parseWait(in); err == nil {
			t.Errorf("wait=%s accepted", in)
		}
	}
}
