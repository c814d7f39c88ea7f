package postgres

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

func TestHeadAndStoreID(t *testing.T) {
	ctx := context.Background()
	a, _ := open(t)
	b, _ := open(t)
	ha, err := a.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := b.Head(ctx)
	if !storeIDForm.MatchString(ha.StoreID) || ha.StoreID == hb.StoreID {
		t.Fatalf("store ids %q %q", ha.StoreID, hb.StoreID)
	}
	if ha.Seq != 1 || ha.Oldest != 1 {
		t.Fatalf("a new store's head %+v", ha)
	}
	// Pruning: old rows go, the newest stays, so the head never goes back.
	s, _ := open(t, WithChangeRetention(time.Nanosecond))
	e, _ := s.Create(ctx, epoch.NewEditor{Username: "alice"})
	for range pruneEvery {
		if _, err := s.Touch(ctx, e.ID); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := s.Head(ctx)
	if h.Seq != pruneEvery+2 || h.Oldest <= 1 || h.Oldest > h.Seq {
		t.Fatalf("after pruning: %+v", h)
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM changes"); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.Head(ctx); h.Seq != 0 || h.Oldest != 1 {
		t.Fatalf("an empty log: %+v", h)
	}
}

// TestStateReadUsesIndexes: the state read finds the editor by its key and
// its revoked tokens through their index, never by a scan, so that it
// stays flat from a thousand editors to a million.
func TestStateReadUsesIndexes(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// Statistics of a big table, so the planner's choice is the real one.
	for _, q := range []string{
		"INSERT INTO editors (id, username, role, auth_epoch, created) SELECT 'e' || i, 'u' || i, 'editor', now(), now() FROM generate_series(1, 20000) i",
		"INSERT INTO api_tokens (token_id, editor_id, name, created, creator, revoked) SELECT 'T' || i, 'e' || (i % 20000 + 1), 'n', now(), 'cli', CASE WHEN i % 2 = 0 THEN now() END FROM generate_series(1, 40000) i",
		"INSERT INTO changes (at) SELECT now() FROM generate_series(1, 20000)",
		"ANALYZE",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := conn.Query(ctx, "EXPLAIN SELECT "+editorColumns+" FROM editors e WHERE e.id = 'e5'")
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(plan, "\n")
	t.Logf("plan:\n%s", all)
	if strings.Contains(all, "Seq Scan") {
		t.Fatalf("the state read scans a table:\n%s", all)
	}
	for _, index := range []string{"editors_pkey", "api_tokens_editor_revoked", "changes_pkey"} {
		if !strings.Contains(all, index) {
			t.Errorf("the state read does not use %s:\n%s", index, all)
		}
	}
}

// storeIDForm is a store id: the random id in store_meta, then the
// database's oid.
var storeIDForm = regexp.MustCompile(`^[0-9a-f]{32}\.[0-9]+$`)

// TestRestoredIsAnotherStore: a byte-for-byte copy of a database in a
// database of its own (CREATE DATABASE … TEMPLATE, what a restore into a
// new database amounts to) carries the same store_meta row, yet is another
// store to followers, which then drop their caches.
func TestRestoredIsAnotherStore(t *testing.T) {
	ctx := context.Background()
	a, url := open(t)
	h, err := a.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Close() // a template must have no connection
	copyName := dbName(url) + "_restored"
	if err := server.Exec(ctx, "postgres", "CREATE DATABASE "+copyName+" TEMPLATE "+dbName(url)); err != nil {
		t.Fatal(err)
	}
	b := openURL(t, server.URL(copyName))
	hb, err := b.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hb.StoreID == h.StoreID || hb.Seq != h.Seq || !storeIDForm.MatchString(hb.StoreID) {
		t.Fatalf("the copy's head %+v, the original's %+v: want another store id, the same log", hb, h)
	}
	if strings.Split(hb.StoreID, ".")[0] != strings.Split(h.StoreID, ".")[0] {
		t.Fatal("the copy's store_meta differs: the test copied nothing")
	}
}
