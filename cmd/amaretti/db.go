package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// backuper is a store that writes consistent copies of itself (SQLite).
type backuper interface {
	Backup(ctx context.Context, path string) error
}

// exporter and importer are stores that "db copy" moves content between:
// both authoritative stores are both.
type (
	exporter interface {
		Export(ctx context.Context) (*epoch.Snapshot, error)
	}
	importer interface {
		Import(ctx context.Context, snap *epoch.Snapshot, replace bool) error
	}
)

func (e *env) migrateCommand() *cli.Command {
	return &cli.Command{
		Name: "migrate",
		Usage: "apply the database's pending schema migrations (every program applies them when it opens the database, " +
			"unless --no-migrate; several daemons starting at once take turns)",
		Action: func(c *cli.Context) error {
			if _, err := args(c); err != nil {
				return err
			}
			from, to, err := setup.Migrate(c.Context, c.String("db"))
			if err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			if c.Bool("json") {
				return e.printJSON(map[string]any{"database": setup.Redact(c.String("db")), "from": from, "to": to})
			}
			if from == to {
				fmt.Fprintf(e.stdout, "%s: schema version %d, up to date\n", setup.Redact(c.String("db")), to)
				return nil
			}
			fmt.Fprintf(e.stdout, "%s: schema version %d → %d\n", setup.Redact(c.String("db")), from, to)
			return nil
		},
	}
}

// keyBackend opens the key backend where names for "db copy": a directory
// (made when create), or "db" for the database db, opened as store.
func (e *env) keyBackend(c *cli.Context, where, db string, store epoch.Store, create bool) (macaroon.KeyBackend, error) {
	o := e.keyOptions(c)
	o.Keys, o.DB = where, db
	if !setup.KeysInDatabase(where) {
		if create {
			if err := os.MkdirAll(where, 0o700); err != nil {
				return nil, err
			}
		} else if _, err := os.Stat(where); err != nil {
			return nil, fmt.Errorf("%w at %s", setup.ErrNoKeyStore, where)
		}
		return macaroon.NewDirBackend(where), nil
	}
	keys, err := setup.OpenKeys(c.Context, o, store)
	if err != nil {
		return nil, err
	}
	return keys.Backend(), nil
}

// count is "1 editor", "2 editors".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// keysWhere names a --keys-from or --keys-to for messages.
func keysWhere(where, db string) string {
	return setup.KeysWhere(setup.KeyOptions{Keys: where, DB: db})
}

// emptyKeys fails unless b holds no key.
func emptyKeys(ctx context.Context, b macaroon.KeyBackend) error {
	have, err := b.Load(ctx)
	if err != nil {
		return err
	}
	if len(have) > 0 {
		return fmt.Errorf("--keys-to already holds %d keys: copy keys only into an empty key store", len(have))
	}
	return nil
}

// copyKeys adds every key of from to to, which must hold none, keeping
// their states and creation times: the current key last, so that it stays
// the current one.
func copyKeys(ctx context.Context, from, to macaroon.KeyBackend) (int, error) {
	if err := emptyKeys(ctx, to); err != nil {
		return 0, err
	}
	keys, err := from.Load(ctx)
	if err != nil {
		return 0, err
	}
	current := func(k *macaroon.Key) int {
		if k.State() == macaroon.StateCurrent {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(keys, func(a, b *macaroon.Key) int { return cmp.Compare(current(a), current(b)) })
	for _, k := range keys {
		if err := to.Add(ctx, k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// copyStore copies every editor, registry row and login link from one
// store to another ("db copy").
func (e *env) copyStore(c *cli.Context) error {
	if _, err := args(c); err != nil {
		return err
	}
	from, to := c.String("from"), c.String("to")
	if from == "" || to == "" {
		return usagef("db copy needs --from and --to (a SQLite file or a postgres:// URL each)")
	}
	src, err := setup.Store(c.Context, from, setup.StoreOptions{Now: e.now, ReadTimeout: readTimeout})
	if err != nil {
		return fmt.Errorf("db copy: --from: %w", err)
	}
	defer src.Close()
	dst, err := setup.Store(c.Context, to, setup.StoreOptions{Now: e.now, Create: true, ReadTimeout: readTimeout})
	if err != nil {
		return fmt.Errorf("db copy: --to: %w", err)
	}
	defer dst.Close()
	ex, ok := src.(exporter)
	if !ok {
		return fmt.Errorf("db copy: %s cannot be exported", setup.Redact(from))
	}
	im, ok := dst.(importer)
	if !ok {
		return fmt.Errorf("db copy: %s cannot be imported into", setup.Redact(to))
	}
	var keysFrom, keysTo macaroon.KeyBackend
	if (c.String("keys-from") == "") != (c.String("keys-to") == "") {
		return usagef("db copy: give both --keys-from and --keys-to, or neither")
	}
	if c.String("keys-from") != "" {
		if keysFrom, err = e.keyBackend(c, c.String("keys-from"), from, src, false); err != nil {
			return fmt.Errorf("db copy: --keys-from: %w", err)
		}
		if keysTo, err = e.keyBackend(c, c.String("keys-to"), to, dst, true); err != nil {
			return fmt.Errorf("db copy: --keys-to: %w", err)
		}
		if err := emptyKeys(c.Context, keysTo); err != nil {
			return fmt.Errorf("db copy: %w", err)
		}
	}
	snap, err := ex.Export(c.Context)
	if err != nil {
		return fmt.Errorf("db copy: reading %s: %w", setup.Redact(from), err)
	}
	if err := im.Import(c.Context, snap, c.Bool("replace")); err != nil {
		if errors.Is(err, epoch.ErrNotEmpty) {
			return fmt.Errorf("db copy: %s is not empty; copy into an empty store, or pass --replace to delete what it holds first", setup.Redact(to))
		}
		return fmt.Errorf("db copy: writing %s: %w", setup.Redact(to), err)
	}
	nkeys := 0
	if keysFrom != nil {
		if nkeys, err = copyKeys(c.Context, keysFrom, keysTo); err != nil {
			return fmt.Errorf("db copy: the store is copied, the keys are not: %w", err)
		}
	}
	if c.Bool("json") {
		return e.printJSON(map[string]any{"from": setup.Redact(from), "to": setup.Redact(to),
			"editors": len(snap.Editors), "tokens": len(snap.Tokens), "links": len(snap.Links), "keys": nkeys,
			"audit_events": len(snap.Audit), "sent_notifications": len(snap.Sent)})
	}
	fmt.Fprintf(e.stdout, "copied %s, %s and %s from %s to %s\n",
		count(len(snap.Editors), "editor"), count(len(snap.Tokens), "API token"), count(len(snap.Links), "login link"), setup.Redact(from), setup.Redact(to))
	fmt.Fprintf(e.stdout, "appended %s to its audit trail and marked %s as sent\n",
		count(len(snap.Audit), "audit event"), count(len(snap.Sent), "delivered notification"))
	if keysFrom == nil {
		fmt.Fprintln(e.stdout, "root keys are not copied: copy them with --keys-from and --keys-to, or \"amaretti keys export\" and \"amaretti keys import\"")
	} else {
		fmt.Fprintf(e.stdout, "copied %s from %s to %s\n", count(nkeys, "root key"), keysWhere(c.String("keys-from"), from), keysWhere(c.String("keys-to"), to))
	}
	return nil
}

func (e *env) dbCommand() *cli.Command {
	return &cli.Command{
		Name:  "db",
		Usage: "maintain the database",
		Subcommands: []*cli.Command{
			{
				Name: "copy",
				Usage: "copy every editor (ids, epochs, versions, roles), API-token row and login link from one store to another, " +
					"for example from SQLite to PostgreSQL; the target must be empty unless --replace; stop writers to the source first",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "from", EnvVars: []string{"AMARETTI_COPY_FROM"}, Usage: "the source: a SQLite `FILE` or a postgres:// URL (a URL with a password belongs in the environment, not on a command line other users can read)"},
					&cli.StringFlag{Name: "to", EnvVars: []string{"AMARETTI_COPY_TO"}, Usage: "the target: a SQLite `FILE` (created when missing) or a postgres:// URL (likewise)"},
					&cli.BoolFlag{Name: "replace", Usage: "delete what the target holds first (in the same transaction)"},
					&cli.StringFlag{Name: "keys-from", Usage: "also copy the root keys (states and creation times kept) from this key `DIR`, or \"db\" for the source's database"},
					&cli.StringFlag{Name: "keys-to", Usage: "…to this key `DIR` (created), or \"db\" for the target's database (sealed with --key-encryption-key-file / " + setup.KEKEnv + "); it must hold no key yet"},
				},
				Action: e.copyStore,
			},
			{
				Name: "backup",
				Usage: "write a consistent copy of the database to FILE (0600, never overwriting) while daemons keep running; " +
					"to restore, stop every daemon, move the backup to --db, remove the old -wal and -shm files, start them, then touch " +
					"the editors revoked after the backup (or all of them)",
				ArgsUsage: "FILE",
				Action: e.withStore(func(c *cli.Context, s epoch.Store) error {
					a, err := args(c, "file")
					if err != nil {
						return err
					}
					b, ok := s.(backuper)
					if !ok {
						return fmt.Errorf("db backup: the database at %s is not a SQLite file; back PostgreSQL up with its own tools (pg_dump)", setup.Redact(c.String("db")))
					}
					if err := b.Backup(c.Context, a[0]); err != nil {
						if errors.Is(err, fs.ErrExist) {
							return fmt.Errorf("db backup: %s exists; a backup never overwrites a file: choose a new name", a[0])
						}
						return fmt.Errorf("db backup: %w", err)
					}
					if c.Bool("json") {
						return e.printJSON(map[string]string{"backup": a[0], "database": c.String("db")})
					}
					fmt.Fprintf(e.stdout, "backed up %s to %s (mode 0600)\n", c.String("db"), a[0])
					return nil
				}),
			},
		},
	}
}
