package introspection

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rs"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/internal/testproc"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// bin holds amarettid and amaretti, built once.
var bin string

func TestMain(m *testing.M) {
	testproc.Main(m, &bin, "github.com/amaretti-auth/amaretti/cmd/amarettid", "github.com/amaretti-auth/amaretti/cmd/amaretti")
}

// TestZitadelResourceServer runs a real amarettid with a Basic client file
// and asks it with zitadel's resource-server client (client credentials,
// form-encoded into Basic as RFC 6749 §2.3.1 says): a valid token is active
// with its subject, username, scope, expiry, issue time, id and type; a
// garbage or touched token is inactive, never an error; a wrong secret is
// the client's error (401 invalid_client).
func TestZitadelResourceServer(t *testing.T) {
	dir := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "AMARETTI_DB=" + filepath.Join(dir, "amaretti.db"), "AMARETTI_KEYS=" + filepath.Join(dir, "keys")}
	cli := func(args ...string) string {
		cmd := exec.Command(filepath.Join(bin, "amaretti"), args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("amaretti %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	cli("init")
	alice := cli("editor", "create", "alice")
	clients := filepath.Join(dir, "introspect-clients")
	// An id and a secret that need form-encoding: zitadel encodes them.
	if err := os.WriteFile(clients, []byte("resource+server:s3cr:t%/+ &x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testproc.FreeAddr(t)
	d := testproc.Start(t, dir, filepath.Join(bin, "amarettid"), addr, "/readyz",
		[]string{"--listen", addr, "--introspect-client-file", clients, "--poll", "100ms", "--cache-ttl", "50ms", "--store-timeout", "5s"}, env)

	keys, err := macaroon.OpenKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	minter, err := macaroon.NewMinter(keys, "api.example.org")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond) // tokens are created after the editor's epoch
	expires := time.Now().Add(time.Hour).Truncate(time.Second)
	tok, err := minter.Mint(context.Background(), alice, macaroon.WithUsername("alice"),
		macaroon.WithCaveats(caveat.Rights{"read", "write"}, caveat.ExpiresAt(expires)))
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	server := func(secret string) rs.ResourceServer {
		r, err := rs.NewResourceServerClientCredentials(ctx, d.URL, "resource+server", secret,
			rs.WithStaticEndpoints(d.URL+"/unused-token-endpoint", d.URL+"/v1/introspect"))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	good := server("s3cr:t%/+ &x")
	introspect := func(r rs.ResourceServer, token string) (*oidc.IntrospectionResponse, error) {
		return rs.Introspect[*oidc.IntrospectionResponse](ctx, r, token)
	}

	t.Run("valid", func(t *testing.T) {
		got, err := introspect(good, tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprint(true, alice, "alice", []string{"read", "write"}, expires.Unix(), tok.TokenID, "Bearer")
		if g := fmt.Sprint(got.Active, got.Subject, got.Username, []string(got.Scope), got.Expiration.AsTime().Unix(), got.JWTID, got.TokenType); g != want {
			t.Errorf("got  %s\nwant %s", g, want)
		}
		if iat := got.IssuedAt.AsTime(); iat.After(time.Now()) || time.Since(iat) > time.Minute {
			t.Errorf("iat %v", iat)
		}
	})
	for _, tc := range []struct{ name, token string }{
		{"garbage", "mF_9.B5f-4.1JqM"},
		{"empty-ish", "A"},
		{"tampered", tamper(tok.Token)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := introspect(good, tc.token)
			if err != nil || got.Active || got.Subject != "" {
				t.Fatalf("%+v %v", got, err)
			}
		})
	}
	t.Run("wrong secret", func(t *testing.T) {
		got, err := introspect(server("s3cr:t%/+ &y"), tok.Token)
		var oe *oidc.Error
		if !errors.As(err, &oe) || oe.ErrorType != oidc.InvalidClient || got != nil && got.Active {
			t.Fatalf("%+v %v", got, err)
		}
	})
	t.Run("touched", func(t *testing.T) {
		cli("editor", "touch", alice)
		deadline := time.Now().Add(3 * time.Second) // --poll 100ms, far inside
		for {
			got, err := introspect(good, tok.Token)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Active {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a touched token is still active")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// tamper changes one character in the middle of a token: unlike a fixed
// ending, it always differs from the original.
func tamper(tok string) string {
	i, c := len(tok)/2, byte('A')
	if tok[i] == c {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}
