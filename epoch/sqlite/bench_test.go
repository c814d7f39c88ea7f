package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// BenchmarkStateRead reads an editor's state with 1, 10,000 and 100,000
// token rows in the registry, all of one noisy editor: most revoked before
// its epoch (covered by a touch), 1,000 revoked after it (listed in its
// state, the limit), the rest live. "other" reads an editor without
// tokens, "noisy" the editor with the rows (a 1,000-id revoked list).
func BenchmarkStateRead(b *testing.B) {
	ctx := context.Background()
	for _, rows := range []int{1, 10_000, 100_000} {
		s, err := Open(ctx, filepath.Join(b.TempDir(), "a.db"))
		if err != nil {
			b.Fatal(err)
		}
		noisy, _ := s.Create(ctx, epoch.NewEditor{Username: "noisy", Epoch: time.Unix(1000, 0)})
		other, _ := s.Create(ctx, epoch.NewEditor{Username: "other"})
		epochUS := micros(time.Unix(2000, 0))
		tx, _ := s.db.BeginTx(ctx, nil)
		stmt, _ := tx.PrepareContext(ctx, "INSERT INTO api_tokens (token_id, editor_id, name, created, creator, revoked) VALUES (?, ?, ?, ?, 'cli', ?)")
		for i := 0; i < rows; i++ {
			created, revoked := epochUS-1000, any(epochUS) // revoked, covered by the epoch
			switch {
			case i < 1000:
				created = epochUS + int64(i) + 1 // revoked one by one after the epoch: listed
			case rows-i <= 100:
				created, revoked = epochUS+int64(i)+1, nil // live
			}
			if _, err := stmt.ExecContext(ctx, fmt.Sprintf("%08X-0000-4000-8000-000000000000", i), noisy.ID, fmt.Sprint("t", i), created, revoked); err != nil {
				b.Fatal(err)
			}
		}
		stmt.Close()
		if _, err := tx.ExecContext(ctx, "UPDATE editors SET auth_epoch = ? WHERE id = ?", epochUS, noisy.ID); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		for _, who := range []struct{ name, id string }{{"other", other.ID}, {"noisy", noisy.ID}} {
			b.Run(fmt.Sprintf("rows=%d/%s", rows, who.name), func(b *testing.B) {
				for b.Loop() {
					if _, err := s.State(ctx, who.id); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		s.Close()
	}
}
