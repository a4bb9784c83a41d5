package web

import "testing"

// A size limit in a refusal reads as people think of it, and exactly.
func TestSizeOf(t *testing.T) {
	for n, want := range map[int64]string{
		50 << 20:  "50 MiB (52428800 bytes)",
		1_500_000: "1.4 MiB (1500000 bytes)",
		1000:      "1000 bytes",
	} {
		if got := sizeOf(n); got != want {
			t.Errorf("sizeOf(%d) = %q, want %q", n, got, want)
		}
	}
}
