package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/internal/setup"
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
	src, err := setup.Store(c.Context, from, setup.StoreOptions{Now: e.now})
	if err != nil {
		return fmt.Errorf("db copy: --from: %w", err)
	}
	defer src.Close()
	dst, err := setup.Store(c.Context, to, setup.StoreOptions{Now: e.now, Create: true})
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
	if c.Bool("json") {
		return e.printJSON(map[string]any{"from": setup.Redact(from), "to": setup.Redact(to),
			"editors": len(snap.Editors), "tokens": len(snap.Tokens), "links": len(snap.Links)})
	}
	fmt.Fprintf(e.stdout, "copied %d editors, %d API tokens and %d login links from %s to %s\n",
		len(snap.Editors), len(snap.Tokens), len(snap.Links), setup.Redact(from), setup.Redact(to))
	fmt.Fprintln(e.stdout, "root keys are not copied: move them with \"amaretti keys export\" and \"amaretti keys import\"")
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
					&cli.StringFlag{Name: "from", Usage: "the source: a SQLite `FILE` or a postgres:// URL"},
					&cli.StringFlag{Name: "to", Usage: "the target: a SQLite `FILE` (created when missing) or a postgres:// URL"},
					&cli.BoolFlag{Name: "replace", Usage: "delete what the target holds first (in the same transaction)"},
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
