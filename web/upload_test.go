package web

import (
	"strings"
	"testing"
	"unicode/utf8"
)

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

// A long file name is cut at a character's start, never inside one.
func TestSanitizeNameCutsWholeCharacters(t *testing.T) {
	long := strings.Repeat("a", 199) + "日本.jpg"
	got := sanitizeName(`C:\photos\` + long)
	if got != strings.Repeat("a", 199) || !utf8.ValidString(got) {
		t.Errorf("%q", got)
	}
	if got := sanitizeName("dir/" + strings.Repeat("é", 150)); len(got) != 200 || !utf8.ValidString(got) {
		t.Errorf("%d bytes %q", len(got), got)
	}
}
