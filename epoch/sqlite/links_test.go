package sqlite

import (
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/epoch"
)

// TestUsernameFrom: the usernames Login derives from a provider's
// suggestion (epoch.UsernameFrom).
func TestUsernameFrom(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                   "alice",
		"Alice.Smith@example.org": "Alice.Smith",
		"  _-jo hn!":              "jo-hn-",
		"Zoë":                     "Zo-",
		"@example.org":            "user",
		"":                        "user",
		"...":                     "user",
		strings.Repeat("a", 80):   strings.Repeat("a", 64),
	} {
		if got := epoch.UsernameFrom(in); got != want {
			t.Errorf("epoch.UsernameFrom(%q) = %q, want %q", in, got, want)
		}
	}
}
