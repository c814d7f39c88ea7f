package epoch_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/epoch"
)

func uuid(i int) string { return fmt.Sprintf("%08X-0000-4000-8000-000000000000", i) }

func TestTokenRevoked(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 7, 64, 1100} {
		t.Run(fmt.Sprint(n, " revoked"), func(t *testing.T) {
			var ids []string
			for i := 0; i < n; i++ {
				ids = append(ids, uuid(2*i+1)) // odd: revoked; even: not
			}
			st := epoch.State{Revoked: strings.Join(ids, ",")}
			if err := epoch.CheckRevoked(st.Revoked); err != nil {
				t.Fatal(err)
			}
			for i := 0; i <= 2*n+1; i++ {
				if got, want := st.TokenRevoked(uuid(i)), i%2 == 1 && i < 2*n; got != want {
					t.Fatalf("TokenRevoked(%s) = %v", uuid(i), got)
				}
			}
			for _, other := range []string{"", "x", strings.ToLower(uuid(0xB)), uuid(1) + ","} {
				if st.TokenRevoked(other) {
					t.Fatalf("TokenRevoked(%q)", other)
				}
			}
		})
	}
	st, id := epoch.State{Revoked: uuid(1) + "," + uuid(3)}, uuid(3)
	if a := testing.AllocsPerRun(100, func() { st.TokenRevoked(id) }); a != 0 {
		t.Fatalf("%v allocations", a)
	}
}

func TestCheckRevoked(t *testing.T) {
	for _, tc := range []struct {
		name, list string
	}{
		{"lower case", strings.ToLower(uuid(0xABC))},
		{"out of order", uuid(3) + "," + uuid(1)},
		{"duplicate", uuid(1) + "," + uuid(1)},
		{"no comma", uuid(1) + ";" + uuid(3)},
		{"trailing comma", uuid(1) + ","},
		{"short id", uuid(1)[:35]},
		{"not hex", strings.Replace(uuid(1), "0", "G", 1)},
		{"dash misplaced", "0000000-10000-4000-8000-000000000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := epoch.CheckRevoked(tc.list); !errors.Is(err, epoch.ErrBadRevoked) {
				t.Fatalf("CheckRevoked(%q) = %v", tc.list, err)
			}
			// Never a panic on a list that does not check.
			epoch.State{Revoked: tc.list}.TokenRevoked(uuid(1))
		})
	}
}

func BenchmarkTokenRevoked(b *testing.B) {
	var ids []string
	for i := 0; i < 1100; i++ {
		ids = append(ids, uuid(i))
	}
	st := epoch.State{Revoked: strings.Join(ids, ",")}
	id := uuid(1099)
	for b.Loop() {
		st.TokenRevoked(id)
	}
}
