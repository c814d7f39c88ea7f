package main

import (
	"errors"
	"fmt"

	"github.com/amaretti-auth/amaretti/epoch/sqlite"
	"github.com/urfave/cli/v2"
)

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
				Action: e.withStore(func(c *cli.Context, s *sqlite.Store) error {
					a, err := args(c, "file")
					if err != nil {
						return err
					}
					if err := s.Backup(c.Context, a[0]); err != nil {
						if errors.Is(err, sqlite.ErrBackupExists) {
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
