package apitoken_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// TestAttenuation: the caveats a holder appended, and only those, are
// summarised; the fingerprint tells attenuations apart; nothing secret
// and nothing unbounded is in the summary.
func TestAttenuation(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	secret, _, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "ci", Rights: []string{"read", "edit"}, Endpoint: "api"})
	if err != nil {
		t.Fatal(err)
	}
	att := func(cavs ...caveat.Caveat) string {
		t.Helper()
		out, err := macaroon.AttenuateWith(e.checker, macaroon.Limits{}, secret, cavs...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	plain, _, _ := macaroon.StripAPIFormat(secret)
	noKind, err := e.minter.Mint(ctx, e.alice.ID, macaroon.WithCaveats(caveat.Methods{"GET"}))
	if err != nil {
		t.Fatal(err)
	}
	longPath := "/" + strings.Repeat("a", 200)
	until := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name, token, summary string
		fingerprint          bool
	}{
		{"as minted", secret, "", false},
		{"as minted, without the format", plain, "", false},
		{"method and path", att(caveat.Methods{"GET"}, caveat.PathPrefix("/api/x")), "GET /api/x", true},
		{"path and methods in another order", att(caveat.PathPrefix("/api/x"), caveat.Methods{"GET", "HEAD"}), "GET,HEAD /api/x", true},
		{"rights, endpoint, expiry", att(caveat.Rights{"read"}, caveat.Endpoint("api"), caveat.ExpiresAt(until)), "rights=read @api until 2026-07-01T00:00:00Z", true},
		{"an application's caveat", att(tenant("acme")), "caveat tenant", true},
		{"a long path is cut", att(caveat.PathPrefix(longPath)), "", true},
		{"a token without a kind", noKind.Token, "", false},
		{"not a token", "amt_nonsense_000000", "", false},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			summary, fp := apitoken.Attenuation(tc.token)
			if tc.fingerprint != (fp != "") || fp != "" && !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(fp) {
				t.Fatalf("fingerprint %q", fp)
			}
			switch {
			case tc.name == "a long path is cut":
				if len(summary) > epoch.MaxAttenuation || !strings.HasPrefix(summary, "/aaa") || !strings.HasSuffix(summary, "…") {
					t.Fatalf("summary %q (%d bytes)", summary, len(summary))
				}
			case summary != tc.summary:
				t.Fatalf("summary %q, want %q", summary, tc.summary)
			}
			if fp != "" {
				if other, dup := seen[fp]; dup {
					t.Fatalf("fingerprint shared with %q", other)
				}
				seen[fp] = tc.name
			}
			tok, _ := macaroon.Parse(tc.token, macaroon.Limits{})
			if tok != nil {
				sig := tok.Signature()
				if strings.Contains(summary, string(sig[:4])) && len(summary) > 0 {
					t.Fatal("the summary holds signature bytes")
				}
			}
		})
	}
	// The same attenuation gives the same fingerprint.
	_, a := apitoken.Attenuation(att(caveat.Methods{"GET"}))
	_, b := apitoken.Attenuation(att(caveat.Methods{"GET"}))
	if a != b || a == "" {
		t.Fatalf("fingerprints %q %q", a, b)
	}
}

// TestTrackerAttenuationAndRetirement: SeenToken records the attenuation
// of the use it notes, and a flush retires the rotations its uses ended,
// announcing the editor.
func TestTrackerAttenuationAndRetirement(t *testing.T) {
	ctx := context.Background()
	e := setup(t)
	_, old, err := e.issuer.Create(ctx, apitoken.Request{EditorID: e.alice.ID, Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	secret, row, _, err := e.issuer.Rotate(ctx, apitoken.RotateRequest{TokenID: old.TokenID})
	if err != nil {
		t.Fatal(err)
	}
	var announced []epoch.Editor
	tr := apitoken.NewTracker(e.store, time.Hour, nil, apitoken.WithRetirement(e.store, func(_ context.Context, eds []epoch.Editor) { announced = append(announced, eds...) }))
	narrowed, err := macaroon.Attenuate(secret, caveat.Methods{"GET"}, caveat.PathPrefix("/api/x"))
	if err != nil {
		t.Fatal(err)
	}
	tr.SeenToken(row.TokenID, "192.0.2.1", narrowed)
	tr.SeenToken(row.TokenID, "192.0.2.2", secret) // within the interval: not noted
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := e.store.Token(ctx, row.TokenID)
	if got.LastAttenuation != "GET /api/x" || len(got.LastAttenuationID) != 12 || got.LastUsedFrom != "192.0.2.1" {
		t.Fatalf("row %+v", got)
	}
	if o, _ := e.store.Token(ctx, old.TokenID); o.Revoked.IsZero() || len(announced) != 1 || announced[0].ID != e.alice.ID {
		t.Fatalf("old row %+v, announced %+v", o, announced)
	}
	// A flush with nothing to retire announces nothing.
	if err := tr.Flush(ctx); err != nil || len(announced) != 1 {
		t.Fatalf("second flush: %v, %d announcements", err, len(announced))
	}
}
