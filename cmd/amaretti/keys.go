package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

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
			keys, keyCreated, err := macaroon.InitKeyStore(c.String("keys"), macaroon.WithStoreClock(e.now))
			if err != nil {
				return err
			}
			path := c.String("db")
			_, statErr := os.Stat(path)
			dbCreated := errors.Is(statErr, os.ErrNotExist)
			store, err := setup.Store(c.Context, path, setup.StoreOptions{Now: e.now, Create: true})
			if err != nil {
				return err
			}
			defer store.Close()
			version, err := store.SchemaVersion(c.Context)
			if err != nil {
				return err
			}
			cur, err := keys.Current()
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return e.printJSON(map[string]any{
					"keys": keys.Dir(), "keys_created": keyCreated, "current_key": cur.ID(),
					"db": path, "db_created": dbCreated, "schema_version": version,
				})
			}
			switch {
			case keyCreated:
				fmt.Fprintf(e.stdout, "created key store %s with current key %s\n", keys.Dir(), cur.ID())
			default:
				fmt.Fprintf(e.stdout, "key store %s already exists (current key %s): unchanged\n", keys.Dir(), cur.ID())
			}
			switch {
			case dbCreated:
				fmt.Fprintf(e.stdout, "created database %s (schema version %d)\n", path, version)
			default:
				fmt.Fprintf(e.stdout, "database %s already exists (schema version %d): unchanged\n", path, version)
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
					k, err := keys.Rotate()
					if err != nil {
						return err
					}
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
					k, err := keys.Retire(a[0])
					if err != nil {
						return err
					}
					return printKey(c, k, "retired")
				}),
			},
			{
				Name:      "export",
				Usage:     "print a key's secret as standard padded base64 (44 characters)",
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
					k, err := keys.Import(a[0], strings.TrimRight(string(data), "\r\n"))
					if err != nil {
						return err
					}
					return printKey(c, k, "imported")
				}),
			},
		},
	}
}
