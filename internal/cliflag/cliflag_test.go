package cliflag

import (
	"io"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// problem runs a command line through an app with a flag of each kind and
// returns what Problem made of its flag error ("" when there was none).
func problem(t testing.TB, args ...string) string {
	t.Helper()
	var got string
	app := &cli.App{
		Name:           "prog",
		Writer:         io.Discard,
		ErrWriter:      io.Discard,
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			got = Problem(c, err, "", "prog --help")
			return err
		},
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "ttl", Aliases: []string{"t"}, EnvVars: []string{"PROG_TTL"}},
			&cli.IntFlag{Name: "size", EnvVars: []string{"PROG_SIZE"}},
			&cli.Int64Flag{Name: "max-body"},
			&cli.BoolFlag{Name: "notify", EnvVars: []string{"PROG_NOTIFY"}},
			&cli.StringFlag{Name: "name"},
			&cli.Float64Flag{Name: "ratio"},
		},
		Commands: []*cli.Command{{
			Name:   "mint",
			Flags:  []cli.Flag{&cli.DurationFlag{Name: "expires"}},
			Action: func(*cli.Context) error { return nil },
			OnUsageError: func(c *cli.Context, err error, _ bool) error {
				got = Problem(c, err, "mint: ", "prog mint --help")
				return err
			},
		}},
		Action: func(*cli.Context) error { return nil },
	}
	app.Run(append([]string{"prog"}, args...))
	return got
}

func TestProblem(t *testing.T) {
	const unit = "is not a duration: use a number with h, m or s, e.g. 15m, 24h, or 720h for 30 days (there is no d)"
	for _, tc := range []struct {
		name string
		args []string
		want string
		env  string // NAME=VALUE set for the run
	}{
		{"a duration without a unit", []string{"--ttl", "5"}, `--ttl "5" ` + unit, ""},
		{"a duration in days", []string{"--ttl=30d"}, `--ttl "30d" ` + unit, ""},
		{"a duration by its alias", []string{"-t", "5"}, `-t "5" ` + unit, ""},
		{"a command's duration", []string{"mint", "--expires", "1d"}, `mint: --expires "1d" ` + unit, ""},
		{"an int", []string{"--size", "x"}, `--size "x" is not a whole number (see prog --help)`, ""},
		{"a value with a quote", []string{"--size", `a"b`}, `--size "a\"b" is not a whole number (see prog --help)`, ""},
		{"an int64 with a fraction", []string{"--max-body", "1.5"}, `--max-body "1.5" is not a whole number (see prog --help)`, ""},
		{"a bool", []string{"--notify=maybe"}, `--notify "maybe" is not a boolean: use --notify (true) or --notify=false (see prog --help)`, ""},
		{"a float", []string{"--ratio", "x"}, `--ratio "x": parse error (see prog --help)`, ""},
		{"an unknown flag", []string{"--bogus"}, `unknown flag --bogus (see prog --help)`, ""},
		{"an unknown flag of a command", []string{"mint", "--bogus"}, `mint: unknown flag --bogus (see prog mint --help)`, ""},
		{"a flag without its value", []string{"--name"}, `--name needs a value (see prog --help)`, ""},
		{"no error", []string{"--ttl", "5s", "--size", "3"}, ``, ""},
		{"a duration from the environment", nil, `PROG_TTL (--ttl) "5" ` + unit, "PROG_TTL=5"},
		{"an int from the environment", nil, `PROG_SIZE (--size) "x" is not a whole number (see prog --help)`, "PROG_SIZE=x"},
		{"a bool from the environment", nil, `PROG_NOTIFY (--notify) "maybe" is not a boolean: use true or false (see prog --help)`, "PROG_NOTIFY=maybe"},
		{"a line break from the environment", nil, `PROG_SIZE (--size) (a value of 3 bytes, not repeated) is not a whole number (see prog --help)`, "PROG_SIZE=1\n2"},
		{"out of range", []string{"--size=99999999999999999999"}, `--size "99999999999999999999" is out of range (see prog --help)`, ""},
		// What may be a secret is not repeated.
		{"a URL with a password", []string{"--ttl", "postgres://u:s3cret@h/db"}, `--ttl (a value of 24 bytes, not repeated) ` + unit, ""},
		{"a long value", []string{"--size", strings.Repeat("A", 33)}, `--size (a value of 33 bytes, not repeated) is not a whole number (see prog --help)`, ""},
		{"a webhook in a boolean", []string{"--notify=https://hooks.example/T0/s3cret"}, `--notify (a value of 31 bytes, not repeated) is not a boolean: use --notify (true) or --notify=false (see prog --help)`, ""},
		{"a password from the environment", nil, `PROG_NOTIFY (--notify) (a value of 24 bytes, not repeated) is not a boolean: use true or false (see prog --help)`, "PROG_NOTIFY=redis://:hunter2@cache:1"},
		{"a value typed after a colon", []string{"--db:postgres://u:s3cret@h/d"}, `unknown flag --db… (see prog --help)`, ""},
		{"bad flag syntax", []string{"--=postgres://u:s3cret@h/db"}, `an argument of 27 bytes starting with - is not a flag (see prog --help)`, ""},
		{"a line separator in a name", []string{"--bo\u2028gus"}, `unknown flag --bo… (see prog --help)`, ""},
		{"a line break in a name", []string{"--bo\ngus"}, `unknown flag --bo… (see prog --help)`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if name, value, ok := strings.Cut(tc.env, "="); ok {
				t.Setenv(name, value)
			}
			if got := problem(t, tc.args...); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// FuzzProblem: whatever a flag is given, on the command line (both forms)
// or from its environment variable, the message is one line of printable
// text and repeats no value that could be a secret.
func FuzzProblem(f *testing.F) {
	for _, s := range []string{"5", "1d", "x", "", "\n", "a\"b", "--ttl", "=", "1.5", "-1", "a\u2028b", "\xff", "postgres://u:p@h/d"} {
		for _, flag := range []string{"ttl", "size", "notify", "name", "b\u202eo"} {
			f.Add(flag, s, uint8(0))
		}
	}
	f.Fuzz(func(t *testing.T, flag, value string, form uint8) {
		var got string
		switch form % 3 {
		case 0:
			got = problem(t, "--"+flag+"="+value)
		case 1:
			got = problem(t, "--"+flag, value)
		case 2:
			if flag != "ttl" && flag != "size" && flag != "notify" || strings.ContainsRune(value, 0) {
				return
			}
			t.Setenv("PROG_"+strings.ToUpper(flag), value)
			got = problem(t)
		}
		if !printable(got) || strings.ContainsAny(got, "\r\n") {
			t.Fatalf("--%s %q (form %d): %q is not one printable line", flag, value, form%3, got)
		}
		if (len(value) > MaxShown || strings.ContainsAny(value, "/@")) && len(value) > 3 && strings.Contains(got, value) {
			t.Fatalf("--%s %q (form %d): %q repeats the value", flag, value, form%3, got)
		}
	})
}
