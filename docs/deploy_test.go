package docs

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const guide = "deploy.md"

func readGuide(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(guide)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// goSources returns the non-test Go files under the repository-relative
// dirs, concatenated.
func goSources(t *testing.T, dirs ...string) string {
	t.Helper()
	var b strings.Builder
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join("..", d), func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
				src, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				b.Write(src)
				b.WriteByte('\n')
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// program is one command and what its --help says.
type program struct {
	name string
	src  string            // the directory of its main package, repository-relative
	help map[string]string // flag name (no dashes) → its help entry
}

// buildPrograms builds the four programs the guide documents.
func buildPrograms(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range []struct{ dir, pkgs string }{
		{"..", "./cmd/amarettid ./cmd/amaretti"},
		{"../examples", "./webfront ./api-service"},
	} {
		cmd := exec.Command("go", append([]string{"build", "-o", dir}, strings.Fields(b.pkgs)...)...)
		cmd.Dir = b.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s in %s: %v\n%s", b.pkgs, b.dir, err, out)
		}
	}
	return dir
}

// helpText runs bin args… --help. Go's flag package and urfave/cli both
// print their usage for it; the flag package exits 0 for -help, urfave 0.
func helpText(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, append(args, "--help")...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s --help: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

var (
	cliFlagLine  = regexp.MustCompile(`^\s+--([a-z][a-z0-9-]*)`)
	goFlagLine   = regexp.MustCompile(`^  -([a-z][a-z0-9-]*)`)
	cliCommands  = regexp.MustCompile(`(?m)^COMMANDS:\n((?:   .*\n)+)`)
	commandEntry = regexp.MustCompile(`^\s+([a-z][a-z0-9-]*)`)
)

// parseHelp maps each flag to its help entry: urfave/cli's one line per
// flag, or the flag package's "-name type" line and its indented
// description.
func parseHelp(help string) map[string]string {
	out := map[string]string{}
	last := ""
	for _, l := range strings.Split(help, "\n") {
		if m := cliFlagLine.FindStringSubmatch(l); m != nil {
			out[m[1]], last = l, ""
			continue
		}
		if m := goFlagLine.FindStringSubmatch(l); m != nil {
			out[m[1]], last = l, m[1]
			continue
		}
		if last != "" && strings.HasPrefix(l, "    ") {
			out[last] += "\n" + l
			continue
		}
		last = ""
	}
	return out
}

// subcommands lists the commands of a urfave/cli help text (not "help").
func subcommands(help string) []string {
	m := cliCommands.FindStringSubmatch(help)
	if m == nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(m[1], "\n"), "\n") {
		if c := commandEntry.FindStringSubmatch(l); c != nil && c[1] != "help" {
			out = append(out, c[1])
		}
	}
	return out
}

// programs returns the four programs with their top-level flags, and the
// flags of every amaretti subcommand (two levels down), all together.
func programs(t *testing.T) (map[string]*program, map[string]bool) {
	bin := buildPrograms(t)
	progs := map[string]*program{
		"amarettid":   {name: "amarettid", src: "cmd/amarettid"},
		"amaretti":    {name: "amaretti", src: "cmd/amaretti"},
		"webfront":    {name: "webfront", src: "examples/webfront"},
		"api-service": {name: "api-service", src: "examples/api-service"},
	}
	all := map[string]bool{}
	for _, p := range progs {
		top := helpText(t, filepath.Join(bin, p.name))
		p.help = parseHelp(top)
		if len(p.help) < 5 {
			t.Fatalf("%s --help lists %d flags; the parser no longer reads it:\n%s", p.name, len(p.help), top)
		}
		for f := range p.help {
			all[f] = true
		}
	}
	cli := filepath.Join(bin, "amaretti")
	cmds := subcommands(helpText(t, cli))
	if len(cmds) < 5 {
		t.Fatalf("amaretti --help lists %d commands; the parser no longer reads it", len(cmds))
	}
	for _, c := range cmds {
		h := helpText(t, cli, c)
		for f := range parseHelp(h) {
			all[f] = true
		}
		for _, s := range subcommands(h) {
			for f := range parseHelp(helpText(t, cli, c, s)) {
				all[f] = true
			}
		}
	}
	return progs, all
}

// A flagRow is a row of one of the guide's flag tables.
type flagRow struct {
	program, line         string
	flags, envs, defaults []string
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

func spans(cell string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// flagTables reads the rows of the tables under "### <program>" headings
// whose first column is "flag".
func flagTables(t *testing.T, doc string) []flagRow {
	t.Helper()
	var rows []flagRow
	program, inTable := "", false
	for _, l := range strings.Split(doc, "\n") {
		switch {
		case strings.HasPrefix(l, "#"):
			program, inTable = "", false
			if f := strings.Fields(l); len(f) > 1 && f[0] == "###" {
				program = f[1]
			}
		case program != "" && strings.HasPrefix(l, "| flag |"):
			inTable = true
		case inTable && strings.HasPrefix(l, "| ---"):
		case inTable && strings.HasPrefix(l, "|"):
			cells := strings.Split(l, "|")
			if len(cells) < 5 {
				t.Fatalf("%s: a flag table row with %d cells: %s", guide, len(cells), l)
			}
			r := flagRow{program: program, line: l, flags: spans(cells[1]), defaults: spans(cells[3])}
			for _, e := range spans(cells[2]) {
				r.envs = append(r.envs, strings.SplitN(e, "=", 2)[0])
			}
			rows = append(rows, r)
		default:
			inTable = false
		}
	}
	return rows
}

// external are flags of other programs the guide shows (pg_restore,
// redis-cli).
var external = []string{"clean", "if-exists", "scan", "pattern"}

var (
	flagRef = regexp.MustCompile(`(?:^|[^A-Za-z0-9-])--([a-z][a-z0-9-]*)`)
	envRef  = regexp.MustCompile(`\b(?:AMARETTI|WEBFRONT|API)_[A-Z_]*[A-Z]\b`)
)

// TestGuideFlags: every flag in the guide's tables exists in that
// program's --help, paired with the environment variable and showing the
// default the table gives; every other --flag in the guide exists in some
// program's help (amaretti's subcommands included); every environment
// variable is read by some program.
func TestGuideFlags(t *testing.T) {
	doc := readGuide(t)
	progs, all := programs(t)
	rows := flagTables(t, doc)
	seen := map[string]int{}
	for _, r := range rows {
		seen[r.program]++
	}
	for name := range progs {
		if seen[name] < 5 {
			t.Errorf("%s: the flag table of %s has %d rows (is its heading still \"### %s …\"?)", guide, name, seen[name], name)
		}
	}
	for _, r := range rows {
		t.Run(r.program+" "+strings.Join(r.flags, ","), func(t *testing.T) {
			p := progs[r.program]
			if p == nil {
				t.Fatalf("a flag table under an unknown program %q", r.program)
			}
			if len(r.flags) == 0 {
				t.Fatalf("a row without a flag: %s", r.line)
			}
			var entries []string
			for _, f := range r.flags {
				name, ok := strings.CutPrefix(f, "--")
				if !ok {
					t.Errorf("%q is not written --flag", f)
					continue
				}
				e, ok := p.help[name]
				if !ok {
					t.Errorf("%s --help has no --%s", p.name, name)
					continue
				}
				entries = append(entries, e)
			}
			src := goSources(t, p.src)
			for _, env := range r.envs {
				paired := false
				for i, f := range r.flags {
					name := strings.TrimPrefix(f, "--")
					if i < len(entries) && strings.Contains(entries[i], env) {
						paired = true
					}
					// The flag package's help need not name the variable;
					// the flag's definition line does.
					for _, line := range strings.Split(src, "\n") {
						if strings.Contains(line, `"`+name+`"`) && strings.Contains(line, `"`+env+`"`) {
							paired = true
						}
					}
				}
				if !paired {
					t.Errorf("%s: %s is not the variable of %s (not in its help, not on its definition line)", p.name, env, strings.Join(r.flags, ", "))
				}
			}
			for _, d := range r.defaults {
				found := false
				for _, e := range entries {
					found = found || strings.Contains(e, d)
				}
				if !found {
					t.Errorf("%s: default %q is not in the help of %s:\n%s", p.name, d, strings.Join(r.flags, ", "), strings.Join(entries, "\n"))
				}
			}
		})
	}
	t.Run("every --flag", func(t *testing.T) {
		for _, m := range flagRef.FindAllStringSubmatch(doc, -1) {
			if !all[m[1]] && !slices.Contains(external, m[1]) {
				t.Errorf("%s names --%s, which no program's --help lists", guide, m[1])
			}
		}
	})
	t.Run("every variable", func(t *testing.T) {
		src := goSources(t, "cmd", "internal", "examples")
		for _, env := range envRef.FindAllString(doc, -1) {
			if !strings.Contains(src, `"`+env+`"`) {
				t.Errorf("%s names %s, which no program reads", guide, env)
			}
		}
	})
}

var (
	metricRef   = regexp.MustCompile(`\bamaretti_[a-z_]*[a-z]\b`)
	metricName  = regexp.MustCompile(`"(amaretti_[a-z_]+)"`)
	labelRef    = regexp.MustCompile(`\b(handler|outcome|layer)="([^"]*)"`)
	yamlBlock   = regexp.MustCompile("(?s)```yaml\n(.*?)```")
	testRef     = regexp.MustCompile(`\b((?:Test|Benchmark)[A-Z][A-Za-z0-9_]*)(…)?`)
	histoSuffix = regexp.MustCompile(`_(bucket|sum|count)$`)
)

// TestGuideMetrics: every metric the guide names (its table and its alert
// rules) is one amarettid registers, every metric amarettid registers is
// in the guide, and every label value the rules match is one the daemon
// sets.
func TestGuideMetrics(t *testing.T) {
	doc := readGuide(t)
	src, err := os.ReadFile("../cmd/amarettid/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, m := range metricName.FindAllStringSubmatch(string(src), -1) {
		registered[m[1]] = true
	}
	if len(registered) < 10 {
		t.Fatalf("found %d metric names in metrics.go; the pattern no longer reads it", len(registered))
	}
	named := map[string]bool{}
	for _, m := range metricRef.FindAllString(doc, -1) {
		base := histoSuffix.ReplaceAllString(m, "")
		if !registered[base] && !registered[m] {
			t.Errorf("%s names the metric %s; amarettid has no such metric", guide, m)
		}
		named[base] = true
	}
	for m := range registered {
		if !named[m] {
			t.Errorf("amarettid exports %s; %s does not list it", m, guide)
		}
	}
	code := goSources(t, "cmd/amarettid", "verifier")
	for _, m := range labelRef.FindAllStringSubmatch(doc, -1) {
		if !strings.Contains(code, `"`+m[2]+`"`) {
			t.Errorf("%s matches %s=%q; amarettid never sets that value", guide, m[1], m[2])
		}
	}
	// The outcomes the table lists are values the daemon sets.
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(l, "| `amaretti_verifications_total") {
			continue
		}
		for _, v := range spans(l)[1:] {
			if !strings.Contains(code, `"`+v+`"`) {
				t.Errorf("%s lists %q as a handler or outcome; amarettid never sets it", guide, v)
			}
		}
	}
}

// TestGuideAlertRules: the guide's one YAML block is a well-formed
// Prometheus rule file.
func TestGuideAlertRules(t *testing.T) {
	blocks := yamlBlock.FindAllStringSubmatch(readGuide(t), -1)
	if len(blocks) != 1 {
		t.Fatalf("%s has %d yaml blocks, want the alert rules alone", guide, len(blocks))
	}
	rules, err := checkAlertRules(blocks[0][1])
	if err != nil {
		t.Fatalf("%s's alert rules: %v", guide, err)
	}
	if len(rules) < 5 {
		t.Errorf("%d alert rules, want at least 5", len(rules))
	}
}

// TestAlertRulesChecker: the checker TestGuideAlertRules relies on refuses
// what Prometheus would.
func TestAlertRulesChecker(t *testing.T) {
	good := `groups:
  - name: g
    rules:
      - alert: A
        expr: up == 0
        for: 1m
        labels:
          severity: page
        annotations:
          summary: "x {{ $labels.instance }}"
      - alert: B
        expr: |
          sum(rate(x[5m]))
            > 1
        labels:
          severity: ticket
        annotations:
          summary: y
`
	if _, err := checkAlertRules(good); err != nil {
		t.Fatalf("a valid rule file refused: %v", err)
	}
	for _, c := range []struct{ name, from, to string }{
		{"tab", "        for: 1m", "\tfor: 1m"},
		{"bad duration", "for: 1m", "for: 1 minute"},
		{"no expr", "        expr: up == 0\n", ""},
		{"unbalanced", "expr: up == 0", "expr: sum(up == 0"},
		{"unknown key", "        for: 1m", "        fore: 1m"},
		{"duplicate alert", "alert: B", "alert: A"},
		{"duplicate key", "        for: 1m", "        for: 1m\n        for: 2m"},
		{"bad indentation", "        labels:", "         labels:"},
		{"unquoted colon", "summary: y", "summary: y: z"},
		{"unterminated quote", `summary: "x {{ $labels.instance }}"`, `summary: "x`},
		{"no severity", "severity: ticket", "team: ticket"},
		{"sequence of scalars", "      - alert: A", "      - A\n      - alert: A"},
		{"not a mapping", "groups:", "groups: x\nother:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := strings.Replace(good, c.from, c.to, 1)
			if bad == good {
				t.Fatalf("the case changes nothing")
			}
			if _, err := checkAlertRules(bad); err == nil {
				t.Errorf("accepted:\n%s", bad)
			}
		})
	}
	if _, err := parseYAML("a:\n\tb: c"); !errors.Is(err, errYAML) {
		t.Errorf("a tab: %v, want errYAML", err)
	}
}

// TestGuideCitations: every test or benchmark the guide cites exists
// (a name ending in "…" is a placeholder the coordinator fills in), and
// the README links the guide.
func TestGuideCitations(t *testing.T) {
	doc := readGuide(t)
	var tests strings.Builder
	err := filepath.WalkDir("..", func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") && path != ".." {
			return filepath.SkipDir
		}
		if !e.IsDir() && strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			tests.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all := tests.String()
	cited := 0
	for _, m := range testRef.FindAllStringSubmatch(doc, -1) {
		if m[2] != "" {
			continue
		}
		cited++
		if !strings.Contains(all, "func "+m[1]+"(") {
			t.Errorf("%s cites %s, which no test file defines", guide, m[1])
		}
	}
	if cited < 10 {
		t.Errorf("%s cites %d tests; the pattern no longer reads it", guide, cited)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "(docs/deploy.md)") {
		t.Errorf("README.md does not link docs/deploy.md")
	}
}
