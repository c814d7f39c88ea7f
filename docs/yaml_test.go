package docs

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The library's module has no YAML parser among its requirements, and the
// guide's alert rules need only a small part of YAML: block mappings,
// block sequences of mappings, plain and quoted scalars, and block
// scalars (| and >). parseYAML reads exactly that and refuses the rest, so
// a rule file it accepts is also one any YAML parser reads the same way.

// errYAML is what every parse error wraps.
var errYAML = errors.New("yaml")

type yamlLine struct {
	n      int // 1-based line number in the block
	indent int
	text   string // without the indentation
}

type yamlParser struct {
	lines []yamlLine
	raw   []string // every line, for block scalars
	i     int
}

// parseYAML parses src into map[string]any, []any and string values.
func parseYAML(src string) (any, error) {
	p := &yamlParser{raw: strings.Split(src, "\n")}
	for n, l := range p.raw {
		if strings.Contains(l, "\t") {
			return nil, fmt.Errorf("%w: line %d: a tab", errYAML, n+1)
		}
		t := strings.TrimLeft(l, " ")
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		p.lines = append(p.lines, yamlLine{n + 1, len(l) - len(t), strings.TrimRight(t, " ")})
	}
	if len(p.lines) == 0 {
		return nil, fmt.Errorf("%w: empty document", errYAML)
	}
	v, err := p.block(p.lines[0].indent)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.lines) {
		return nil, fmt.Errorf("%w: line %d: unexpected indentation", errYAML, p.lines[p.i].n)
	}
	return v, nil
}

// block parses the mapping or sequence whose lines start at indent.
func (p *yamlParser) block(indent int) (any, error) {
	if strings.HasPrefix(p.lines[p.i].text, "- ") || p.lines[p.i].text == "-" {
		return p.sequence(indent)
	}
	return p.mapping(indent, nil)
}

func (p *yamlParser) sequence(indent int) ([]any, error) {
	var out []any
	for p.i < len(p.lines) && p.lines[p.i].indent == indent {
		l := p.lines[p.i]
		if !strings.HasPrefix(l.text, "- ") {
			return nil, fmt.Errorf("%w: line %d: a mapping key among sequence items", errYAML, l.n)
		}
		// "- key: value": a mapping whose keys sit at indent+2.
		rest := strings.TrimLeft(l.text[2:], " ")
		inner := indent + len(l.text) - len(rest)
		p.lines[p.i] = yamlLine{l.n, inner, rest}
		if !isMappingLine(rest) {
			return nil, fmt.Errorf("%w: line %d: only mappings are supported as sequence items", errYAML, l.n)
		}
		m, err := p.mapping(inner, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if p.i < len(p.lines) && p.lines[p.i].indent > indent {
		return nil, fmt.Errorf("%w: line %d: unexpected indentation", errYAML, p.lines[p.i].n)
	}
	return out, nil
}

var yamlKey = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_-]*):(?: (.*))?$`)

func isMappingLine(s string) bool { return yamlKey.MatchString(s) }

func (p *yamlParser) mapping(indent int, m map[string]any) (map[string]any, error) {
	if m == nil {
		m = map[string]any{}
	}
	for p.i < len(p.lines) && p.lines[p.i].indent == indent {
		l := p.lines[p.i]
		if strings.HasPrefix(l.text, "- ") {
			return nil, fmt.Errorf("%w: line %d: a sequence item among mapping keys", errYAML, l.n)
		}
		k := yamlKey.FindStringSubmatch(l.text)
		if k == nil {
			return nil, fmt.Errorf("%w: line %d: not a \"key: value\" line", errYAML, l.n)
		}
		if _, dup := m[k[1]]; dup {
			return nil, fmt.Errorf("%w: line %d: key %q repeated", errYAML, l.n, k[1])
		}
		p.i++
		value := strings.TrimSpace(k[2])
		switch {
		case value == "":
			if p.i >= len(p.lines) || p.lines[p.i].indent <= indent {
				return nil, fmt.Errorf("%w: line %d: key %q has no value", errYAML, l.n, k[1])
			}
			v, err := p.block(p.lines[p.i].indent)
			if err != nil {
				return nil, err
			}
			m[k[1]] = v
		case value == "|" || value == "|-" || value == ">" || value == ">-":
			m[k[1]] = p.blockScalar(l.n, indent, value[0] == '>')
			if m[k[1]] == "" {
				return nil, fmt.Errorf("%w: line %d: empty block scalar", errYAML, l.n)
			}
		default:
			s, err := scalar(value)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %w", errYAML, l.n, err)
			}
			m[k[1]] = s
		}
	}
	if p.i < len(p.lines) && p.lines[p.i].indent > indent {
		return nil, fmt.Errorf("%w: line %d: unexpected indentation", errYAML, p.lines[p.i].n)
	}
	return m, nil
}

// blockScalar reads the lines indented more than indent after line n
// (1-based), raw, and skips them in p.lines.
func (p *yamlParser) blockScalar(n, indent int, folded bool) string {
	var body []string
	for p.i < len(p.lines) && p.lines[p.i].indent > indent {
		body = append(body, strings.TrimSpace(p.raw[p.lines[p.i].n-1]))
		p.i++
	}
	sep := "\n"
	if folded {
		sep = " "
	}
	return strings.Join(body, sep)
}

// scalar reads a plain or quoted scalar.
func scalar(s string) (string, error) {
	switch s[0] {
	case '"':
		if len(s) < 2 || s[len(s)-1] != '"' {
			return "", errors.New("unterminated double-quoted scalar")
		}
		inner := s[1 : len(s)-1]
		if strings.Contains(strings.ReplaceAll(inner, `\"`, ""), `"`) {
			return "", errors.New("a bare \" inside a double-quoted scalar")
		}
		return strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(inner), nil
	case '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' {
			return "", errors.New("unterminated single-quoted scalar")
		}
		inner := s[1 : len(s)-1]
		if strings.Contains(strings.ReplaceAll(inner, "''", ""), "'") {
			return "", errors.New("a bare ' inside a single-quoted scalar")
		}
		return strings.ReplaceAll(inner, "''", "'"), nil
	case '{', '[', '&', '*', '!', '%', '@', '`', '|', '>', '#', ',', '?', '-':
		return "", fmt.Errorf("a plain scalar may not start with %q here: quote it", s[0])
	}
	if strings.Contains(s, ": ") || strings.Contains(s, " #") {
		return "", errors.New(`a plain scalar holds ": " or " #": quote it`)
	}
	return s, nil
}

// checkAlertRules checks a Prometheus rule file's structure: groups of
// named rule lists, each rule an alert with an expression, a duration, a
// severity label and a summary annotation.
func checkAlertRules(src string) ([]map[string]any, error) {
	doc, err := parseYAML(src)
	if err != nil {
		return nil, err
	}
	root, ok := doc.(map[string]any)
	if !ok || len(root) != 1 || root["groups"] == nil {
		return nil, errors.New("the document must be a mapping with groups and nothing else")
	}
	groups, ok := root["groups"].([]any)
	if !ok || len(groups) == 0 {
		return nil, errors.New("groups must be a non-empty sequence")
	}
	var rules []map[string]any
	alerts := map[string]bool{}
	for gi, g := range groups {
		gm := g.(map[string]any)
		if err := onlyKeys(gm, "name", "rules", "interval"); err != nil {
			return nil, fmt.Errorf("group %d: %w", gi, err)
		}
		if name, _ := gm["name"].(string); name == "" {
			return nil, fmt.Errorf("group %d: no name", gi)
		}
		rs, ok := gm["rules"].([]any)
		if !ok || len(rs) == 0 {
			return nil, fmt.Errorf("group %d: rules must be a non-empty sequence", gi)
		}
		for ri, r := range rs {
			rm := r.(map[string]any)
			if err := checkRule(rm, alerts); err != nil {
				return nil, fmt.Errorf("group %d, rule %d: %w", gi, ri, err)
			}
			rules = append(rules, rm)
		}
	}
	return rules, nil
}

var (
	alertName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	labelName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	promPeriod = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
)

func checkRule(r map[string]any, seen map[string]bool) error {
	if err := onlyKeys(r, "alert", "expr", "for", "keep_firing_for", "labels", "annotations"); err != nil {
		return err
	}
	name, _ := r["alert"].(string)
	if !alertName.MatchString(name) {
		return fmt.Errorf("alert name %q is not a valid name", name)
	}
	if seen[name] {
		return fmt.Errorf("alert %s twice", name)
	}
	seen[name] = true
	expr, _ := r["expr"].(string)
	if strings.TrimSpace(expr) == "" {
		return fmt.Errorf("%s: no expr", name)
	}
	if err := balanced(expr); err != nil {
		return fmt.Errorf("%s: expr: %w", name, err)
	}
	for _, k := range []string{"for", "keep_firing_for"} {
		if v, ok := r[k]; ok {
			if s, _ := v.(string); !promPeriod.MatchString(s) {
				return fmt.Errorf("%s: %s %q is not a Prometheus duration", name, k, s)
			}
		}
	}
	for _, k := range []string{"labels", "annotations"} {
		m, ok := r[k].(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %s must be a mapping", name, k)
		}
		for lk, lv := range m {
			if _, ok := lv.(string); !ok || !labelName.MatchString(lk) {
				return fmt.Errorf("%s: %s.%s must be a valid name with a string value", name, k, lk)
			}
		}
	}
	if r["labels"].(map[string]any)["severity"] == nil || r["annotations"].(map[string]any)["summary"] == nil {
		return fmt.Errorf("%s: needs labels.severity and annotations.summary", name)
	}
	return nil
}

func onlyKeys(m map[string]any, allowed ...string) error {
	for k := range m {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return fmt.Errorf("unknown key %q (allowed: %s)", k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// balanced checks a PromQL expression's brackets, outside string literals.
func balanced(expr string) error {
	var stack []byte
	var quote byte
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, c)
		case c == ')' || c == ']' || c == '}':
			want := map[byte]byte{')': '(', ']': '[', '}': '{'}[c]
			if len(stack) == 0 || stack[len(stack)-1] != want {
				return fmt.Errorf("unbalanced %q at byte %d", c, i)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if quote != 0 {
		return errors.New("unterminated string")
	}
	if len(stack) > 0 {
		return fmt.Errorf("unclosed %q", stack[len(stack)-1])
	}
	return nil
}
