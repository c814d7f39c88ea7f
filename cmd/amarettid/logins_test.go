package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/apitoken"
	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/internal/testpg"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// loginFixture is amarettid's handlers in process on one store, with a
// frontend's service token (an admin editor's, limited to admin:logins).
type loginFixture struct {
	srv     *httptest.Server
	store   epoch.Store
	minter  *macaroon.Minter
	logs    *syncBuf
	service string // rights = admin:logins, of an admin
	admin   string // an admin's unrestricted token
	editor  string // a plain editor's token with rights = admin:logins
	alice   epoch.Editor
}

// syncBuf is a log sink shared by concurrent handlers and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// loginBackends are the stores the login endpoints are tested on.
var loginBackends = []string{"sqlite", "postgres"}

func newLoginFixture(t *testing.T, backend string) *loginFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "amaretti.db")
	if backend == "postgres" {
		db = testpg.Start(t).NewDatabase(t)
	}
	store, err := setup.Store(ctx, db, setup.StoreOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys, _, err := macaroon.InitKeyStore(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	f := &loginFixture{store: store, logs: &syncBuf{}}
	front, _ := store.Create(ctx, epoch.NewEditor{Username: "webfront", Role: epoch.RoleAdmin})
	plain, _ := store.Create(ctx, epoch.NewEditor{Username: "plain"})
	f.alice, _ = store.Create(ctx, epoch.NewEditor{Username: "alice"})
	cache := epoch.NewCache(store, 0, time.Minute)
	v, _ := verifier.New(keys, cache)
	s := &server{v: v, keys: keys, store: store, cache: cache, m: newMetrics(cache, nil),
		log: slog.New(slog.NewJSONHandler(f.logs, nil)), cookie: "session", maxBody: 4096,
		tracker: apitoken.NewTracker(store, time.Minute, nil)}
	f.minter, _ = macaroon.NewMinter(keys, "")
	checker, _ := caveat.NewChecker()
	s.issuer, _ = apitoken.NewIssuer(store, f.minter, checker)
	f.srv = httptest.NewServer(s.routes())
	t.Cleanup(f.srv.Close)
	time.Sleep(time.Millisecond) // tokens are created after the editors' epochs
	f.service = f.mintT(t, front.ID, caveat.Rights{loginsRight})
	f.admin = f.mintT(t, front.ID)
	f.editor = f.mintT(t, plain.ID, caveat.Rights{loginsRight})
	return f
}

func (f *loginFixture) mintT(t *testing.T, editor string, cavs ...caveat.Caveat) string {
	t.Helper()
	m, err := f.minter.Mint(context.Background(), editor, macaroon.WithCaveats(cavs...))
	if err != nil {
		t.Fatal(err)
	}
	return m.Token
}

// call sends a request with the bearer token (none when "") and decodes a
// JSON answer into a map.
func (f *loginFixture) call(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil && len(raw) > 0 {
		t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, raw)
	}
	if resp.StatusCode >= 500 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func editorOf(t *testing.T, out map[string]any) map[string]any {
	t.Helper()
	e, ok := out["editor"].(map[string]any)
	if !ok {
		t.Fatalf("no editor in %v", out)
	}
	return e
}

func lookupPath(provider, subject string) string {
	return "/v1/admin/logins?" + url.Values{"provider": {provider}, "subject": {subject}}.Encode()
}

// TestLoginEndpoints: a frontend's service token finds, creates and links
// editors; every other token is refused; bad input is a 4xx, never a 5xx.
func TestLoginEndpoints(t *testing.T) {
	for _, b := range loginBackends {
		t.Run(b, func(t *testing.T) { testLoginEndpoints(t, newLoginFixture(t, b)) })
	}
}

func testLoginEndpoints(t *testing.T, f *loginFixture) {
	const issuer = "https://id.example/realms/x"
	var bobID string
	t.Run("first login creates and links", func(t *testing.T) {
		status, out := f.call(t, "POST", "/v1/admin/logins", f.service, `{"provider":"dev","subject":"bob","username":"Bob"}`)
		e := editorOf(t, out)
		if status != 201 || out["created"] != true || e["username"] != "Bob" || e["active"] != true || e["locked"] != false {
			t.Fatalf("%d %v", status, out)
		}
		bobID = e["id"].(string)
		status, out = f.call(t, "POST", "/v1/admin/logins", f.service, `{"provider":"dev","subject":"bob","username":"other"}`)
		if status != 200 || out["created"] != false || editorOf(t, out)["id"] != bobID {
			t.Fatalf("second login: %d %v", status, out)
		}
		status, out = f.call(t, "GET", lookupPath("dev", "bob"), f.service, "")
		if status != 200 || editorOf(t, out)["id"] != bobID {
			t.Fatalf("lookup: %d %v", status, out)
		}
	})
	t.Run("a taken username gets a suffix", func(t *testing.T) {
		status, out := f.call(t, "POST", "/v1/admin/logins", f.service, `{"provider":"dev2","subject":"someone","username":"alice"}`)
		if e := editorOf(t, out); status != 201 || e["username"] != "alice-2" || e["id"] == f.alice.ID {
			t.Fatalf("%d %v", status, out)
		}
	})
	t.Run("link another identity", func(t *testing.T) {
		status, out := f.call(t, "POST", "/v1/admin/editors/"+bobID+"/links", f.service, `{"provider":"`+issuer+`","subject":"b-123"}`)
		if status != 201 || out["editor_id"] != bobID || out["provider"] != issuer {
			t.Fatalf("%d %v", status, out)
		}
		// Idempotent.
		if status, out = f.call(t, "POST", "/v1/admin/editors/"+bobID+"/links", f.service, `{"provider":"`+issuer+`","subject":"b-123"}`); status != 200 || out["editor_id"] != bobID {
			t.Fatalf("again: %d %v", status, out)
		}
		// Logging in with either reaches bob.
		for _, id := range [][2]string{{"dev", "bob"}, {issuer, "b-123"}} {
			_, out := f.call(t, "POST", "/v1/admin/logins", f.service, `{"provider":"`+id[0]+`","subject":"`+id[1]+`"}`)
			if editorOf(t, out)["id"] != bobID || out["created"] != false {
				t.Errorf("login as %v: %v", id, out)
			}
		}
		status, out = f.call(t, "GET", "/v1/admin/editors/"+bobID+"/links", f.service, "")
		links, _ := out["links"].([]any)
		if status != 200 || len(links) != 2 {
			t.Fatalf("links: %d %v", status, out)
		}
	})
	t.Run("link errors", func(t *testing.T) {
		for _, tc := range []struct {
			name, path, body string
			status           int
			code             string
		}{
			{"identity of someone else", "/v1/admin/editors/" + f.alice.ID + "/links", `{"provider":"dev","subject":"bob"}`, 409, errLinkedElsewhere},
			{"second identity at a provider", "/v1/admin/editors/" + bobID + "/links", `{"provider":"dev","subject":"bob-again"}`, 409, errProviderLinked},
			{"unknown editor", "/v1/admin/editors/nosuchEditor1/links", `{"provider":"dev","subject":"z"}`, 404, "not_found"},
			{"impossible editor id", "/v1/admin/editors/..%2F/links", `{"provider":"dev","subject":"z"}`, 404, "not_found"},
			{"empty subject", "/v1/admin/editors/" + bobID + "/links", `{"provider":"dev","subject":""}`, 400, "invalid_request"},
			{"space in provider", "/v1/admin/editors/" + bobID + "/links", `{"provider":"d v","subject":"x"}`, 400, "invalid_request"},
			{"unknown field", "/v1/admin/editors/" + bobID + "/links", `{"provider":"dev","subject":"x","editor_id":"y"}`, 400, "invalid_request"},
			{"repeated field", "/v1/admin/editors/" + bobID + "/links", `{"provider":"dev","provider":"x","subject":"x"}`, 400, "invalid_request"},
			{"not JSON", "/v1/admin/editors/" + bobID + "/links", `provider=dev`, 400, "invalid_request"},
			{"wrong type", "/v1/admin/editors/" + bobID + "/links", `{"provider":1,"subject":"x"}`, 400, "invalid_request"},
			{"login: no body", "/v1/admin/logins", ``, 400, "invalid_request"},
			{"login: long subject", "/v1/admin/logins", `{"provider":"dev","subject":"` + strings.Repeat("s", 256) + `"}`, 400, "invalid_request"},
			{"login: trailing data", "/v1/admin/logins", `{"provider":"dev","subject":"x"} {}`, 400, "invalid_request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, out := f.call(t, "POST", tc.path, f.service, tc.body)
				if status != tc.status || out["error"] != tc.code {
					t.Fatalf("%d %v, want %d %s", status, out, tc.status, tc.code)
				}
			})
		}
	})
	t.Run("lookup errors", func(t *testing.T) {
		for _, tc := range []struct {
			name, query string
			status      int
		}{
			{"not linked", "provider=dev&subject=nobody", 404},
			{"no subject", "provider=dev", 400},
			{"repeated", "provider=dev&subject=a&subject=b", 400},
			{"unknown parameter", "provider=dev&subject=a&token=x", 400},
			{"unreadable", "provider=%zz", 400},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if status, out := f.call(t, "GET", "/v1/admin/logins?"+tc.query, f.service, ""); status != tc.status {
					t.Fatalf("%d %v", status, out)
				}
			})
		}
		if status, _ := f.call(t, "GET", "/v1/admin/editors/nosuchEditor1/links", f.service, ""); status != 404 {
			t.Errorf("links of an unknown editor: %d", status)
		}
	})
	t.Run("unlink", func(t *testing.T) {
		if status, out := f.call(t, "DELETE", "/v1/admin/editors/"+bobID+"/links?"+url.Values{"provider": {issuer}}.Encode(), f.service, ""); status != 200 || out["subject"] != "b-123" {
			t.Fatalf("%d %v", status, out)
		}
		if status, _ := f.call(t, "DELETE", "/v1/admin/editors/"+bobID+"/links?provider="+url.QueryEscape(issuer), f.service, ""); status != 404 {
			t.Fatalf("unlink twice: %d", status)
		}
		if status, _ := f.call(t, "DELETE", "/v1/admin/editors/"+bobID+"/links", f.service, ""); status != 400 {
			t.Fatalf("unlink without a provider: %d", status)
		}
		if status, _ := f.call(t, "GET", lookupPath(issuer, "b-123"), f.service, ""); status != 404 {
			t.Fatalf("lookup after unlink: %d", status)
		}
	})
	t.Run("who may call", func(t *testing.T) {
		for _, tc := range []struct {
			name, token string
			status      int
		}{
			{"no token", "", 401},
			{"garbage", "garbage", 401},
			{"a plain editor with admin:logins in its caveats", f.editor, 403},
			{"a token limited to another right", f.mintT(t, f.alice.ID, caveat.Rights{"admin:touch"}), 403},
			{"the service token limited to admin:touch", f.mintT(t, editorID(t, f, "webfront"), caveat.Rights{"admin:touch"}), 403},
			{"an admin's unrestricted token", f.admin, 200},
			{"the service token", f.service, 200},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, c := range []struct{ method, path, body string }{
					{"GET", lookupPath("dev", "bob"), ""},
					{"POST", "/v1/admin/logins", `{"provider":"dev","subject":"bob"}`},
					{"GET", "/v1/admin/editors/" + bobID + "/links", ""},
					{"POST", "/v1/admin/editors/" + bobID + "/links", `{"provider":"dev","subject":"bob"}`},
				} {
					if status, out := f.call(t, c.method, c.path, tc.token, c.body); status != tc.status {
						t.Errorf("%s %s: %d %v, want %d", c.method, c.path, status, out, tc.status)
					}
				}
			})
		}
		// The service token can do nothing else.
		if status, _ := f.call(t, "POST", "/v1/admin/editors/"+f.alice.ID+"/touch", f.service, ""); status != 403 {
			t.Errorf("the service token touched an editor: %d", status)
		}
		if status, _ := f.call(t, "GET", "/v1/tokens", f.service, ""); status != 403 {
			t.Errorf("the service token listed tokens: %d", status)
		}
	})
	if strings.Contains(f.logs.String(), "b-123") || strings.Contains(f.logs.String(), f.service) {
		t.Error("a subject or a token reached the log")
	}
}

func editorID(t *testing.T, f *loginFixture, username string) string {
	t.Helper()
	e, err := f.store.EditorByUsername(context.Background(), username)
	if err != nil {
		t.Fatal(err)
	}
	return e.ID
}

// TestConcurrentFirstLoginsHTTP: many first logins of one identity sent at
// once through amarettid make one editor, which every answer names.
func TestConcurrentFirstLoginsHTTP(t *testing.T) {
	for _, b := range loginBackends {
		t.Run(b, func(t *testing.T) {
			f := newLoginFixture(t, b)
			before, _ := f.store.List(context.Background())
			const n = 16
			ids := make([]string, n)
			created := make([]bool, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					req, _ := http.NewRequest("POST", f.srv.URL+"/v1/admin/logins", strings.NewReader(`{"provider":"https://id.example","subject":"same","username":"zoe"}`))
					req.Header.Set("Authorization", "Bearer "+f.service)
					req.Header.Set("Content-Type", "application/json")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					defer resp.Body.Close()
					var out struct {
						Editor  struct{ ID string } `json:"editor"`
						Created bool                `json:"created"`
					}
					if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode/100 != 2 {
						t.Errorf("login %d: %d %v", i, resp.StatusCode, err)
						return
					}
					ids[i], created[i] = out.Editor.ID, out.Created
				})
			}
			close(start)
			wg.Wait()
			made := 0
			for i := range n {
				if ids[i] != ids[0] {
					t.Errorf("login %d reached %s, login 0 %s", i, ids[i], ids[0])
				}
				if created[i] {
					made++
				}
			}
			after, _ := f.store.List(context.Background())
			if made != 1 || len(after) != len(before)+1 {
				t.Fatalf("%d answers said created, %d editors made; want one", made, len(after)-len(before))
			}
		})
	}
}

// TestLinkRoleBound: nothing a token creates is more powerful than the
// token. A caller links and unlinks the identities only of editors whose
// role is below its own: the frontend's service token (an admin's) cannot
// link its holder's identity to an admin or superuser (itself included),
// which would be a login as that editor through the real frontend, nor
// unlink theirs; a superuser's token may also manage admins. A first login
// makes a plain editor, whatever the body says.
func TestLinkRoleBound(t *testing.T) {
	for _, b := range loginBackends {
		t.Run(b, func(t *testing.T) {
			f := newLoginFixture(t, b)
			ctx := context.Background()
			mk := func(name string, role epoch.Role) string {
				e, err := f.store.Create(ctx, epoch.NewEditor{Username: name, Role: role})
				if err != nil {
					t.Fatal(err)
				}
				return e.ID
			}
			targets := map[epoch.Role]string{
				epoch.RoleEditor:    f.alice.ID,
				epoch.RoleBot:       mk("somebot", epoch.RoleBot),
				epoch.RoleAdmin:     mk("otheradmin", epoch.RoleAdmin),
				epoch.RoleSuperuser: mk("root2", epoch.RoleSuperuser),
			}
			su := mk("su", epoch.RoleSuperuser)
			time.Sleep(time.Millisecond) // tokens are created after the editors' epochs
			suService := f.mintT(t, su, caveat.Rights{loginsRight})
			self := editorID(t, f, "webfront")
			for i, tc := range []struct {
				name, token, target string
				allowed             bool
			}{
				{"admin → editor", f.service, targets[epoch.RoleEditor], true},
				{"admin → bot", f.service, targets[epoch.RoleBot], true},
				{"admin → another admin", f.service, targets[epoch.RoleAdmin], false},
				{"admin → itself", f.service, self, false},
				{"admin → superuser", f.service, targets[epoch.RoleSuperuser], false},
				{"admin unrestricted → superuser", f.admin, targets[epoch.RoleSuperuser], false},
				{"superuser → admin", suService, targets[epoch.RoleAdmin], true},
				{"superuser → editor", suService, targets[epoch.RoleEditor], true},
				{"superuser → another superuser", suService, targets[epoch.RoleSuperuser], false},
				{"superuser → itself", suService, su, false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					// Providers of the case's own: a target is in several.
					n := string(rune('a' + i))
					op, evil, subject := "op-"+n, "evil-"+n, "attacker"
					links := "/v1/admin/editors/" + tc.target + "/links"
					// An identity the target already has, linked by the operator.
					if _, err := f.store.Link(ctx, tc.target, op, "op-"+subject); err != nil {
						t.Fatal(err)
					}
					status, out := f.call(t, "POST", links, tc.token, `{"provider":"`+evil+`","subject":"`+subject+`"}`)
					switch {
					case tc.allowed && status != 201:
						t.Fatalf("link: %d %v, want 201", status, out)
					case !tc.allowed && (status != 403 || out["error"] != errRoleNotBelow):
						t.Fatalf("link: %d %v, want 403 %s", status, out, errRoleNotBelow)
					}
					e, err := f.store.LinkedEditor(ctx, evil, subject)
					if tc.allowed != (err == nil) || (err == nil && e.ID != tc.target) {
						t.Fatalf("after the link: %v %v", e.ID, err)
					}
					status, out = f.call(t, "DELETE", links+"?provider="+op, tc.token, "")
					switch {
					case tc.allowed && status != 200:
						t.Fatalf("unlink: %d %v, want 200", status, out)
					case !tc.allowed && (status != 403 || out["error"] != errRoleNotBelow):
						t.Fatalf("unlink: %d %v, want 403 %s", status, out, errRoleNotBelow)
					}
					if _, err := f.store.LinkedEditor(ctx, op, "op-"+subject); tc.allowed == (err == nil) {
						t.Fatalf("after the unlink: %v", err)
					}
					// Reading an editor's links and finding it by identity
					// stay open: the frontend shows an admin's accounts page
					// and logs them in.
					if status, out := f.call(t, "GET", links, tc.token, ""); status != 200 {
						t.Fatalf("links: %d %v", status, out)
					}
				})
			}
			t.Run("a first login makes an editor", func(t *testing.T) {
				status, out := f.call(t, "POST", "/v1/admin/logins", suService, `{"provider":"evil","subject":"newcomer","username":"newcomer"}`)
				if e := editorOf(t, out); status != 201 || e["role"] != string(epoch.RoleEditor) {
					t.Fatalf("%d %v", status, out)
				}
				status, out = f.call(t, "POST", "/v1/admin/logins", f.service, `{"provider":"evil","subject":"n2","username":"n2","role":"superuser"}`)
				if status != 400 {
					t.Fatalf("a role in the body: %d %v", status, out)
				}
			})
		})
	}
}
