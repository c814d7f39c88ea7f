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

func (e *env) dbCommand() *cli.Command {
	return &cli.Command{
		Name:  "db",
		Usage: "maintain the SQLite database",
		Subcommands: []*cli.Command{
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
