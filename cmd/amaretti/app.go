package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/amaretti-auth/amaretti/internal/setup"

	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/epoch/rediscache"
	"github.com/amaretti-auth/amaretti/internal/buildinfo"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// env is what commands read and write, so tests can run the CLI in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	// usage is a usage error found by a urfave/cli hook that cannot
	// return one (an unknown command).
	usage error
	// closers release what commands opened for the whole run (the
	// database holding the root keys); run calls them at the end.
	closers []func()
}

// run executes the CLI and returns its exit status: 0 on success, 1 when the
// command failed, 2 for a usage error. Failures print one line to stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
	app := e.app()
	argv := args
	if len(args) == 0 || args[len(args)-1] != completionFlag {
		argv = interspersed(app, args) // completion asks about the words as typed
	}
	err := app.RunContext(ctx, argv)
	for _, c := range e.closers {
		c()
	}
	if err == nil {
		err = e.usage
	}
	if err == nil {
		return 0
	}
	msg := strings.TrimPrefix(oneLine(err.Error()), "amaretti: ")
	fmt.Fprintf(stderr, "amaretti: %s\n", msg)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// oneLine folds a multi-line error message into one line: each line
// trimmed, empty ones dropped, joined by "; ", or by a space after a line
// ending in ":" (pgx lists every address it tried on an indented line of
// its own: "failed to connect to …:\n\t<address>: …\n\t<address>: …").
func oneLine(msg string) string {
	var b strings.Builder
	prev := ""
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		switch {
		case prev == "":
		case strings.HasSuffix(prev, ":"):
			b.WriteString(" ")
		default:
			b.WriteString("; ")
		}
		b.WriteString(l)
		prev = l
	}
	return b.String()
}

func (e *env) app() *cli.App {
	app := &cli.App{
		Name:                 "amaretti",
		Usage:                "manage amaretti root keys, editors, epochs and tokens",
		Version:              buildinfo.Version(),
		Reader:               e.stdin,
		Writer:               e.stdout,
		ErrWriter:            e.stderr,
		HideHelpCommand:      true,
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {}, // run reports errors
		OnUsageError:         onUsageError,
		CommandNotFound:      e.commandNotFound,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "db", Value: "./amaretti.db", EnvVars: []string{"AMARETTI_DB"}, Usage: "the store: a SQLite database `FILE` (or sqlite:FILE), or a postgres:// URL"},
			&cli.BoolFlag{Name: "no-migrate", EnvVars: []string{"AMARETTI_NO_MIGRATE"}, Usage: "refuse a database whose schema is older than this program instead of upgrading it (run \"amaretti migrate\" first)"},
			&cli.StringFlag{Name: "keys", Value: "./keys", EnvVars: []string{"AMARETTI_KEYS"}, Usage: "root key `DIR`ectory, or \"db\" for keys kept (sealed) in the PostgreSQL database --db names"},
			&cli.StringFlag{Name: "key-encryption-key-file", EnvVars: []string{setup.KEKFileEnv}, Usage: "`FILE` (mode 0600) holding the key-encryption key that seals root keys kept in the database (--keys db); or set " + setup.KEKEnv + " to the key itself"},
			&cli.StringFlag{Name: "location", EnvVars: []string{"AMARETTI_LOCATION"}, Usage: "location written into minted tokens, e.g. api.example.org"},
			&cli.StringFlag{Name: "redis", EnvVars: []string{"AMARETTI_REDIS"}, Usage: "redis:// `URL` shared with running verifiers: touch, lock, unlock and (de)activate announce their change there"},
			&cli.BoolFlag{Name: "json", Usage: "machine-readable output"},
		}, policyFlags()...),
		Commands: []*cli.Command{
			e.initCommand(),
			e.demoCommand(),
			e.keysCommand(),
			e.editorCommand(),
			e.tokenCommand(),
			e.tokensCommand(),
			e.bootstrapCommand(),
			e.dbCommand(),
			e.migrateCommand(),
			e.auditCommand(),
			e.completionCommand(),
		},
	}
	withUsageErrors(app.Commands)
	return app
}

// args checks the number of positional arguments. The message never
// repeats an argument: it may be a token.
func args(c *cli.Context, names ...string) ([]string, error) {
	where, help := here(c)
	usage := strings.TrimSuffix(help, " --help") + " " + strings.ToUpper(strings.Join(names, " "))
	switch n := c.NArg(); {
	case n == len(names):
		return c.Args().Slice(), nil
	case len(names) == 0:
		return nil, usagef("%stakes no arguments, got %d (see %s)", where, n, help)
	case n < len(names):
		return nil, usagef("%smissing %s (usage: %s)", where, strings.ToUpper(strings.Join(names[n:], " ")), usage)
	default:
		return nil, usagef("%stakes %s only, got %d arguments (usage: %s)", where, strings.ToUpper(strings.Join(names, " ")), n, usage)
	}
}

// commandPath names the running command as typed: "token mint".
func commandPath(c *cli.Context) string {
	var names []string
	for _, l := range c.Lineage() {
		// The app's own root command carries the app's name; leave it out.
		if l.Command != nil && l.Command.Name != "" && l.Command.Name != c.App.Name {
			names = append([]string{l.Command.Name}, names...)
		}
	}
	return strings.Join(names, " ")
}

// keyOptions says where --keys, --db and the key-encryption key put the
// root keys.
func (e *env) keyOptions(c *cli.Context) setup.KeyOptions {
	return setup.KeyOptions{Keys: c.String("keys"), DB: c.String("db"), KEKFile: c.String("key-encryption-key-file"),
		KEK: os.Getenv(setup.KEKEnv), StoreOptions: []macaroon.StoreOption{macaroon.WithStoreClock(e.now)}}
}

// openKeys opens the root key store. Keys kept in the database are read
// through a connection of their own, open until the run ends.
func (e *env) openKeys(c *cli.Context) (*macaroon.KeyStore, error) {
	o := e.keyOptions(c)
	if kind, _ := setup.Parse(o.DB); !setup.KeysInDatabase(o.Keys) || kind != setup.PostgreSQL {
		return setup.OpenKeys(c.Context, o, nil) // a directory, or the refusal
	}
	store, err := e.openStore(c)
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { store.Close() })
	return setup.OpenKeys(c.Context, o, store)
}

func (e *env) openStore(c *cli.Context) (epoch.Store, error) {
	return setup.Store(c.Context, c.String("db"), setup.StoreOptions{Now: e.now, NoMigrate: c.Bool("no-migrate"), ReadTimeout: readTimeout})
}

// readTimeout bounds the CLI's reads of editor state and the change log
// on PostgreSQL. The daemon's 100 ms (--store-timeout) is a gateway's
// latency budget; an operator's command (token verify, editor show) would
// rather wait for a busy database than fail.
const readTimeout = 5 * time.Second

// pollBound is what the CLI says about when running verifiers see a change
// that was not announced: the database's change log is their backstop.
const pollBound = "running verifiers see it within their poll interval (1s by default)"

// announce tells running verifiers about changed editors through Redis,
// when --redis is set, so that they see the change at once. The change is
// already committed to the database, with its change-log row, so verifiers
// see it within their poll interval whatever happens here: a failure is
// said on stderr, and is not an error.
func (e *env) announce(c *cli.Context, store epoch.Store, editors ...epoch.Editor) error {
	url := c.String("redis")
	if url == "" {
		return nil
	}
	rdb, err := rediscache.NewClient(url)
	if err != nil {
		return fmt.Errorf("saved in the database, but not announced (%s): --redis: %w", pollBound, err)
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(c.Context, 5*time.Second)
	defer cancel()
	// The new states are written to Redis authenticated by the root keys
	// (as the daemons write them); without the key store the announcement
	// only wakes the daemons, which read the store.
	var opts []rediscache.Option
	if keys, err := e.openKeys(c); err == nil {
		opts = append(opts, rediscache.WithKeys(keys))
	}
	if err := rediscache.New(rdb, store, opts...).Announce(ctx, editors...); err != nil {
		fmt.Fprintf(e.stderr, "amaretti: saved in the database, but not announced through Redis (%s): %v\n", pollBound, err)
	}
	return nil
}

// withStore runs f with the database open.
func (e *env) withStore(f func(c *cli.Context, s epoch.Store) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		s, err := e.openStore(c)
		if err != nil {
			return err
		}
		defer s.Close()
		return f(c, s)
	}
}

// readToken returns a token argument, reading it from stdin when it is "-"
// so that tokens need not appear in shell history or process listings. A
// "Bearer " prefix, as copied from an Authorization header, is removed; an
// argument naming an existing file is a usage error that says to use "-".
func (e *env) readToken(arg string) (string, error) {
	if arg != "-" {
		if fi, err := os.Stat(arg); err == nil && !fi.IsDir() {
			return "", usagef("%q looks like a file name; pass - and redirect the file to stdin: - < %s", arg, arg)
		}
		return stripBearer(arg), nil
	}
	line, err := bufio.NewReader(io.LimitReader(e.stdin, 1<<20)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading token from stdin: %w", err)
	}
	tok := stripBearer(strings.TrimRight(line, "\r\n"))
	if tok == "" {
		return "", errors.New("no token on stdin")
	}
	return tok, nil
}

// stripBearer removes a leading "Bearer" and the spaces after it (any
// case, as RFC 6750's scheme name is case-insensitive).
// maxShown is the longest argument an error quotes: longer than any id,
// username or file name it may need to, shorter than any token.
const maxShown = 64

// shown is a command-line argument as an error may quote it. An argument
// that could be a token (longer than maxShown) is never echoed: errors end
// up in terminals, logs and CI output.
func shown(arg string) string {
	if len(arg) > maxShown {
		return fmt.Sprintf("(an argument of %d bytes, not shown)", len(arg))
	}
	return strconv.Quote(arg)
}

func stripBearer(tok string) string {
	if len(tok) > 7 && strings.EqualFold(tok[:6], "bearer") && tok[6] == ' ' {
		return strings.TrimLeft(tok[6:], " ")
	}
	return tok
}

func (e *env) printJSON(v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(append(escapeJSON(data), '\n'))
	return err
}

func (e *env) table(header string, rows [][]string) error {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, header)
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	return w.Flush()
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}
