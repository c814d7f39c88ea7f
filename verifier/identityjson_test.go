package verifier_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/verifier"
)

// TestIdentityAppendJSON: AppendJSON writes exactly what json.Marshal
// writes, for every field present or absent and for strings and times off
// the fast path.
func TestIdentityAppendJSON(t *testing.T) {
	created := time.Date(2026, 6, 1, 12, 0, 0, 123456000, time.UTC)
	base := verifier.Identity{EditorID: "aaaaaaaaaaaaaaaaaaaaaaaaaa", Username: "alice", Kind: caveat.KindSession,
		Role: epoch.RoleEditor, TokenID: "3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE", KeyID: "k2026",
		Created: created, Expires: created.Add(time.Hour), Rights: []string{"read", "edit"}}
	with := func(f func(*verifier.Identity)) verifier.Identity { id := base; f(&id); return id }
	paris := time.FixedZone("Paris", 2*3600)
	tests := []struct {
		name    string
		id      verifier.Identity
		wantErr bool
	}{
		{"every field", base, false},
		{"zero", verifier.Identity{}, false},
		{"no optional field", with(func(id *verifier.Identity) {
			id.Username, id.Kind, id.TokenID, id.Expires, id.Rights = "", "", "", time.Time{}, nil
		}), false},
		{"empty rights", with(func(id *verifier.Identity) { id.Rights = []string{} }), false},
		{"one right", with(func(id *verifier.Identity) { id.Rights = []string{"admin:touch"} }), false},
		{"html and quotes", with(func(id *verifier.Identity) { id.Username = `a<b>&"c"\d` }), false},
		{"control characters", with(func(id *verifier.Identity) { id.Username = "a\nb\tc\x00d\x7f" }), false},
		{"unicode", with(func(id *verifier.Identity) { id.Username = "élise\u2028" }), false},
		{"invalid utf-8", with(func(id *verifier.Identity) { id.Rights = []string{"\xff\xfe"} }), false},
		{"whole seconds", with(func(id *verifier.Identity) { id.Created = created.Truncate(time.Second) }), false},
		{"not utc", with(func(id *verifier.Identity) { id.Created = created.In(paris) }), false},
		{"local", with(func(id *verifier.Identity) { id.Expires = created.Local() }), false},
		{"year 10000", with(func(id *verifier.Identity) { id.Expires = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), true},
		{"year -1", with(func(id *verifier.Identity) { id.Created = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, wantErr := json.Marshal(tt.id)
			got, err := tt.id.AppendJSON([]byte("prefix"))
			if (err != nil) != tt.wantErr || (wantErr != nil) != tt.wantErr {
				t.Fatalf("AppendJSON error %v, json.Marshal error %v, want an error: %v", err, wantErr, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if string(got) != "prefix"+string(want) {
				t.Fatalf("AppendJSON:\n%s\njson.Marshal:\n%s", got[len("prefix"):], want)
			}
		})
	}
}

// BenchmarkIdentityJSON compares AppendJSON with json.Marshal.
func BenchmarkIdentityJSON(b *testing.B) {
	created := time.Date(2026, 6, 1, 12, 0, 0, 123456000, time.UTC)
	id := verifier.Identity{EditorID: "aaaaaaaaaaaaaaaaaaaaaaaaaa", Role: epoch.RoleEditor, TokenID: "3F2504E0-4F89-41D3-9D2A-0C04FE1ABCDE",
		KeyID: "k2026", Created: created, Expires: created.Add(time.Hour)}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for range b.N {
			if _, err := id.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := json.Marshal(id); err != nil {
				b.Fatal(err)
			}
		}
	})
}
