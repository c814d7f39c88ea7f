package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/macaroon"
)

func (e *env) initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "create the database and the key store with a first key (changes nothing when they exist)",
		Action: func(c *cli.Context) error {
			if _, err := args(c); err != nil {
				return err
			}
			path := c.String("db")
			kind, target := setup.Parse(path)
			dbCreated := false
			if kind == setup.SQLite {
				_, statErr := os.Stat(target)
				dbCreated = errors.Is(statErr, os.ErrNotExist)
			}
			o := e.keyOptions(c)
			if setup.KeysInDatabase(o.Keys) {
				// Refused before anything is made.
				if kind != setup.PostgreSQL {
					_, _, err := setup.InitKeys(c.Context, o, nil)
					return err
				}
				if _, err := setup.ReadKEK(o); err != nil {
					return err
				}
			}
			// On PostgreSQL the database exists already; what init does is
			// create or upgrade the schema: say which.
			schemaFrom := -1
			if kind == setup.PostgreSQL {
				from, _, err := setup.Migrate(c.Context, path)
				if err != nil {
					return err
				}
				schemaFrom = from
			}
			store, err := setup.Store(c.Context, path, setup.StoreOptions{Now: e.now, Create: true, ReadTimeout: readTimeout})
			if err != nil {
				return err
			}
			defer store.Close()
			version, err := store.SchemaVersion(c.Context)
			if err != nil {
				return err
			}
			keys, keyCreated, err := setup.InitKeys(c.Context, o, store)
			if err != nil {
				return err
			}
			cur, err := keys.Current()
			if err != nil {
				return err
			}
			where, shown := setup.KeysWhere(o), setup.Redact(path)
			keyStore := "key store " + where
			if setup.KeysInDatabase(o.Keys) {
				keyStore = "key store in " + where // "key store in the database postgres://…"
			}
			if c.Bool("json") {
				return e.printJSON(map[string]any{
					"keys": where, "keys_created": keyCreated, "current_key": cur.ID(),
					"db": shown, "db_created": dbCreated || schemaFrom == 0, "schema_version": version,
				})
			}
			switch {
			case keyCreated:
				fmt.Fprintf(e.stdout, "created %s with current key %s\n", keyStore, cur.ID())
			default:
				fmt.Fprintf(e.stdout, "%s already exists (current key %s): unchanged\n", keyStore, cur.ID())
			}
			switch {
			case dbCreated:
				fmt.Fprintf(e.stdout, "created database %s (schema version %d)\n", shown, version)
			case schemaFrom == 0:
				fmt.Fprintf(e.stdout, "created the schema in database %s (schema version %d)\n", shown, version)
			case schemaFrom >= 0 && schemaFrom < version:
				fmt.Fprintf(e.stdout, "database %s: schema version %d → %d\n", shown, schemaFrom, version)
			default:
				fmt.Fprintf(e.stdout, "database %s already exists (schema version %d): unchanged\n", shown, version)
			}
			return nil
		},
	}
}

type keyJSON struct {
	ID      string    `json:"id"`
	State   string    `json:"state"`
	Created time.Time `json:"created"`
}

func (e *env) keysCommand() *cli.Command {
	withKeys := func(f func(c *cli.Context, keys *macaroon.KeyStore) error) cli.ActionFunc {
		return func(c *cli.Context) error {
			keys, err := e.openKeys(c)
			if err != nil {
				return err
			}
			return f(c, keys)
		}
	}
	printKey := func(c *cli.Context, k *macaroon.Key, verb string) error {
		if c.Bool("json") {
			return e.printJSON(keyJSON{k.ID(), string(k.State()), k.Created()})
		}
		fmt.Fprintf(e.stdout, "%s key %s (%s)\n", verb, k.ID(), k.State())
		return nil
	}
	return &cli.Command{
		Name:  "keys",
		Usage: "manage root keys",
		Subcommands: []*cli.Command{
			e.newKEKCommand(),
			{
				Name:  "list",
				Usage: "list keys: id, state, creation time",
				Action: withKeys(func(c *cli.Context, keys *macaroon.KeyStore) error {
					if _, err := args(c); err != nil {
						return err
					}
					ks := keys.Keys()
					if c.Bool("json") {
						out := make([]keyJSON, 0, len(ks))
						for _, k := range ks {
							out = append(out, keyJSON{k.ID(), string(k.State()), k.Created()})
						}
						return e.printJSON(out)
					}
					rows := make([][]string, 0, len(ks))
					for _, k := range ks {
						rows = append(rows, []string{k.ID(), string(k.State()), formatTime(k.Created())})
					}
					return e.table("ID\tSTATE\tCREATED", rows)
				}),
			},
			{
				Name:  "rotate",
				Usage: "make a new current key; the old one keeps verifying until retired",
				Action: withKeys(func(c *cli.Context, keys *macaroon.KeyStore) error {
					if _, err := args(c); err != nil {
						return err
					}
					k, err := keys.RotateContext(c.Context)
					if err != nil {
						return err
					}
					e.recordKeys(c, epoch.AuditKeyRotated, k.ID())
					return printKey(c, k, "new current")
				}),
			},
			{
				Name:      "retire",
				Usage:     "retire a verify-only key: tokens minted under it stop verifying",
				ArgsUsage: "ID",
				Action: withKeys(func(c *cli.Context, keys *macaroon.KeyStore) error {
					a, err := args(c, "id")
					if err != nil {
						return err
					}
					k, err := keys.RetireContext(c.Context, a[0])
					if err != nil {
						return err
					}
					e.recordKeys(c, epoch.AuditKeyRetired, k.ID())
					return printKey(c, k, "retired")
				}),
			},
			{
				Name:      "export",
				Usage:     "print a key's secret as standard padded base64 (44 characters); with \"keys import\" it moves a key between a directory and the database",
				ArgsUsage: "ID",
				Action: withKeys(func(c *cli.Context, keys *macaroon.KeyStore) error {
					a, err := args(c, "id")
					if err != nil {
						return err
					}
					secret, err := keys.Export(a[0])
					if err != nil {
						return err
					}
					fmt.Fprintln(e.stdout, secret)
					return nil
				}),
			},
			{
				Name:      "import",
				Usage:     "add a verify-only key, its secret read from stdin as standard padded base64 (for example fatcat's AUTH_SECRET_KEY, with its AUTH_KEY_IDENT as ID)",
				ArgsUsage: "ID",
				Action: withKeys(func(c *cli.Context, keys *macaroon.KeyStore) error {
					a, err := args(c, "id")
					if err != nil {
						return err
					}
					data, err := io.ReadAll(io.LimitReader(e.stdin, 4096))
					if err != nil {
						return err
					}
					k, err := keys.ImportContext(c.Context, a[0], strings.TrimRight(string(data), "\r\n"))
					if err != nil {
						return err
					}
					e.recordKeys(c, epoch.AuditKeyImported, k.ID())
					return printKey(c, k, "imported")
				}),
			},
		},
	}
}

// newKEKCommand prints a fresh key-encryption key, or writes it to a new
// file (mode 0600) with --out.
func (e *env) newKEKCommand() *cli.Command {
	return &cli.Command{
		Name:  "new-kek",
		Usage: "make a key-encryption key for root keys kept in the database (--keys db): 32 random bytes in base64; give every host the same one, never store it in the database",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "write it to the new `FILE` (mode 0600; an existing file is never replaced) instead of printing it"},
		},
		Action: func(c *cli.Context) error {
			if _, err := args(c); err != nil {
				return err
			}
			text, err := macaroon.NewKeyEncryptionKeyText(nil)
			if err != nil {
				return err
			}
			out := c.String("out")
			if out == "" {
				fmt.Fprintln(e.stdout, text)
				return nil
			}
			if err := macaroon.WriteKeyEncryptionKeyFile(out, text); err != nil {
				return err
			}
			if c.Bool("json") {
				return e.printJSON(map[string]string{"file": out})
			}
			fmt.Fprintf(e.stdout, "wrote a new key-encryption key to %s (mode 0600); use it with --key-encryption-key-file %s\n", out, out)
			return nil
		},
	}
}
