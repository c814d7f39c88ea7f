package repocheck

import (
	"os/exec"
	"strings"
	"testing"
)

// TestGitignoreCoversReadmeFiles: what the README's commands create in a
// working tree (the store, the key directory, the key-encryption key of
// the PostgreSQL sections, tokens, binaries, a Redis snapshot) is ignored
// by git, so a user following them never commits a secret.
func TestGitignoreCoversReadmeFiles(t *testing.T) {
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	for _, path := range []string{
		"amaretti.db", "amaretti.db-wal", "amaretti.db-shm", "backup-2026-11-30.db",
		"keys/20261122-0af2c006.json",
		"kek", // keys new-kek --out kek (examples/api-service, examples/webfront)
		"token.txt", "read-only.txt", "bot.env", "env/root.env", "laptop.token",
		"amaretti", "amarettid", "bin/webfront", "bin/amarettid",
		"dump.rdb",
	} {
		t.Run(path, func(t *testing.T) {
			cmd := exec.Command("git", "check-ignore", "--no-index", "-q", path)
			cmd.Dir = strings.TrimSpace(string(root))
			if err := cmd.Run(); err != nil {
				t.Errorf("%s is not ignored by .gitignore (git check-ignore: %v)", path, err)
			}
		})
	}
}
