package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/amaretti-auth/amaretti/epoch"
)

// auditList reads "audit list --json" with args.
func (c *runner) auditList(args ...string) ([]epoch.AuditEvent, string, string) {
	c.t.Helper()
	raw := c.ok("", append([]string{"--json", "audit", "list"}, args...)...)
	var out struct {
		Events []epoch.AuditEvent `json:"events"`
		Next   string             `json:"next"`
	}
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		c.t.Fatalf("audit list: %v: %s", err, raw)
	}
	return out.Events, out.Next, raw
}

// TestAuditTrailCLI runs every management action of the CLI once, then
// reads the trail: one event per action, by the operator's CLI with the OS
// user, newest first, filtered and paged; and never a token or key secret
// in any record.
func TestAuditTrailCLI(t *testing.T) {
	c := newCLI(t)
	c.ok("", "init")
	var secrets []string
	alice := c.ok("", "editor", "create", "alice")
	bob := c.ok("", "editor", "create", "bob", "--role", "bot")
	c.ok("", "editor", "link", alice, "--provider", "dev", "--subject", "alice-sub")
	c.ok("", "editor", "unlink", alice, "--provider", "dev")
	c.ok("", "editor", "touch", alice)
	c.ok("", "editor", "touch", "--all", "--yes")
	c.ok("", "editor", "lock", bob)
	c.ok("", "editor", "unlock", bob)
	c.ok("", "editor", "deactivate", bob)
	c.ok("", "editor", "activate", bob)
	var created struct {
		Token   string `json:"token"`
		TokenID string `json:"token_id"`
	}
	c.jsonOut(&created, "tokens", "create", alice, "--name", "ci", "--expires", "720h")
	secrets = append(secrets, created.Token)
	c.ok("", "tokens", "revoke", created.TokenID)
	secrets = append(secrets, c.ok("", "token", "mint", alice, "--expires", "1h"))
	c.ok("", "keys", "rotate")
	var keys []keyJSON
	c.jsonOut(&keys, "keys", "list")
	for _, k := range keys {
		secrets = append(secrets, c.ok("", "keys", "export", k.ID))
	}
	var raw [32]byte
	rand.Read(raw[:])
	imported := base64.StdEncoding.EncodeToString(raw[:])
	secrets = append(secrets, imported)
	c.ok(imported+"\n", "keys", "import", "imported-1")
	c.ok("", "keys", "retire", keys[0].ID)
	envDir := filepath.Join(c.dir, "env")
	c.ok("", "bootstrap", "--env-dir", envDir)
	files, _ := filepath.Glob(filepath.Join(envDir, "*.env"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, m := range regexp.MustCompile(`(?m)^[A-Z_]+=(.+)$`).FindAllStringSubmatch(string(data), -1) {
			secrets = append(secrets, m[1])
		}
	}
	if len(files) != 4 {
		t.Fatalf("bootstrap wrote %d env files", len(files))
	}

	events, next, all := c.auditList("--limit", "1000")
	if next != "" {
		t.Fatalf("one page expected, next %q", next)
	}
	count := map[epoch.AuditAction]int{}
	for i, e := range events {
		count[e.Action]++
		if e.Actor != epoch.ActorCLI || e.OSUser == "" || e.At.IsZero() || e.ID == 0 {
			t.Fatalf("event %+v: want the operator CLI with an OS user", e)
		}
		if i > 0 && e.ID >= events[i-1].ID {
			t.Fatal("events are not newest first")
		}
	}
	want := map[epoch.AuditAction]int{
		epoch.AuditEditorCreated: 2 + 4, epoch.AuditEditorLinked: 1, epoch.AuditEditorUnlinked: 1, epoch.AuditEditorTouched: 1,
		epoch.AuditEditorTouchedAll: 1, epoch.AuditEditorLocked: 1, epoch.AuditEditorUnlocked: 1, epoch.AuditEditorDeactivated: 1,
		epoch.AuditEditorActivated: 1, epoch.AuditTokenCreated: 1 + 4, epoch.AuditTokenRevoked: 1, epoch.AuditTokenMinted: 1,
		epoch.AuditKeyRotated: 1, epoch.AuditKeyImported: 1, epoch.AuditKeyRetired: 1,
	}
	for a, n := range want {
		if count[a] != n {
			t.Errorf("%d %s events, want %d", count[a], a, n)
		}
	}
	if len(events) != 24 {
		t.Errorf("%d events, want 24: %v", len(events), count)
	}
	table := c.ok("", "audit", "list", "--limit", "1000")
	for _, s := range secrets {
		if len(s) < 20 {
			t.Fatalf("secret %d bytes: the test lost it", len(s))
		}
		for _, part := range []string{s, s[:20], s[len(s)-20:]} {
			if strings.Contains(all, part) || strings.Contains(table, part) {
				t.Fatalf("a secret appears in the audit trail")
			}
		}
	}

	filters := []struct {
		name string
		args []string
		want int
	}{
		{"editor alice", []string{"--editor", alice}, 7},
		{"editor bob", []string{"--editor", bob}, 5},
		{"token", []string{"--token", created.TokenID}, 2},
		{"action", []string{"--action", "key.rotated"}, 1},
		{"since a duration", []string{"--since", "1h"}, 24},
		{"since the future", []string{"--since", "2999-01-01T00:00:00Z"}, 0},
	}
	for _, f := range filters {
		t.Run(f.name, func(t *testing.T) {
			if got, _, _ := c.auditList(f.args...); len(got) != f.want {
				t.Fatalf("%d events, want %d: %+v", len(got), f.want, got)
			}
		})
	}
	t.Run("pages", func(t *testing.T) {
		var ids []int64
		args := []string{"--limit", "5"}
		for range 10 {
			page, next, _ := c.auditList(args...)
			for _, e := range page {
				ids = append(ids, e.ID)
			}
			if next == "" {
				break
			}
			args = []string{"--limit", "5", "--before", next}
		}
		if len(ids) != 24 {
			t.Fatalf("paged %d events, want 24", len(ids))
		}
		for i := 1; i < len(ids); i++ {
			if ids[i] >= ids[i-1] {
				t.Fatalf("pages overlap or are out of order: %v", ids)
			}
		}
		r := c.run("", "audit", "list", "--limit", "5")
		if !strings.Contains(r.stderr, "more: amaretti audit list --before "+strconv.FormatInt(ids[4], 10)) {
			t.Fatalf("table page: stderr %q", r.stderr)
		}
	})
	t.Run("usage errors", func(t *testing.T) {
		c.fail("--since", "", "audit", "list", "--since", "yesterday")
		c.fail("--limit", "", "audit", "list", "--limit", "0")
		c.fail("--older-than", "", "audit", "prune", "--older-than", "-1h")
	})
	t.Run("prune keeps recent events and is recorded only when it deletes", func(t *testing.T) {
		if out := c.ok("", "audit", "prune", "--older-than", "8760h"); !strings.Contains(out, "pruned 0") {
			t.Fatalf("prune: %s", out)
		}
		if got, _, _ := c.auditList(); len(got) != 24 {
			t.Fatalf("%d events after pruning nothing", len(got))
		}
	})
}
