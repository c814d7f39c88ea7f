package caveat

import (
	"fmt"
	"time"
)

// bytestring is satisfied by string and []byte, so the parser can read
// caveats in place inside a decoded token without copying them.
type bytestring interface {
	~string | ~[]byte
}

const (
	maxNameLen   = 64
	timeBefore   = "time-before"
	minYear      = 1970
	maxYear      = 9999
	maxFraction  = 9
	maxListItems = 64
)

// condition is one caveat split by the grammar, before its value is typed.
type condition[T bytestring] struct {
	name, op, value T
}

// split applies the caveat grammar: name SP op SP value, or
// "time-before" SP value. It checks the character set and the spacing and
// nothing else.
func split[T bytestring](text T) (condition[T], error) {
	var c condition[T]
	if len(text) == 0 {
		return c, fmt.Errorf("%w: empty caveat", ErrMalformed)
	}
	for i := 0; i < len(text); i++ {
		if b := text[i]; b < 0x20 || b > 0x7e {
			return c, fmt.Errorf("%w: byte 0x%02x at offset %d is not printable ASCII", ErrMalformed, b, i)
		}
	}
	sp := indexByte(text, ' ')
	if sp < 0 {
		return c, fmt.Errorf("%w: no separator", ErrMalformed)
	}
	c.name = text[:sp]
	if !validName(c.name) {
		return c, fmt.Errorf("%w: caveat name must match [a-z][a-z0-9_-]{0,63}", ErrMalformed)
	}
	rest := text[sp+1:]
	if string(c.name) == timeBefore {
		c.value = rest
	} else {
		if len(rest) < 3 || (rest[0] != '=' && rest[0] != '<' && rest[0] != '>') || rest[1] != ' ' {
			return c, fmt.Errorf("%w: expected \"name op value\" with op one of = < > and single spaces", ErrMalformed)
		}
		c.op = rest[:1]
		c.value = rest[2:]
	}
	if len(c.value) == 0 {
		return c, fmt.Errorf("%w: empty value", ErrMalformed)
	}
	if indexByte(c.value, ' ') >= 0 {
		return c, fmt.Errorf("%w: more than one separator or trailing data", ErrMalformed)
	}
	return c, nil
}

func indexByte[T bytestring](s T, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}

func validName[T bytestring](s T) bool {
	if len(s) == 0 || len(s) > maxNameLen || !isLower(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if b := s[i]; !isLower(b) && !isDigit(b) && b != '_' && b != '-' {
			return false
		}
	}
	return true
}

func isLower(b byte) bool { return 'a' <= b && b <= 'z' }
func isUpper(b byte) bool { return 'A' <= b && b <= 'Z' }
func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// ValidEditorID reports whether s is a well-formed editor id: 1 to 64
// characters of [a-z0-9_-], starting with a letter or digit. Fatcat's ids (26
// characters of lower-case base32) are a subset.
func ValidEditorID[T bytestring](s T) bool {
	if len(s) == 0 || len(s) > 64 || !(isLower(s[0]) || isDigit(s[0])) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if b := s[i]; !isLower(b) && !isDigit(b) && b != '_' && b != '-' {
			return false
		}
	}
	return true
}

// validEndpoint: [A-Za-z0-9][A-Za-z0-9_.:-]{0,127}.
func validEndpoint[T bytestring](s T) bool {
	if len(s) == 0 || len(s) > 128 || !(isLower(s[0]) || isUpper(s[0]) || isDigit(s[0])) {
		return false
	}
	for i := 1; i < len(s); i++ {
		b := s[i]
		if !isLower(b) && !isUpper(b) && !isDigit(b) && b != '_' && b != '.' && b != ':' && b != '-' {
			return false
		}
	}
	return true
}

// ValidRight reports whether s is a well-formed right name:
// [a-z][a-z0-9_.:-]{0,63}, e.g. "read", "edit", "admin:touch".
func ValidRight[T bytestring](s T) bool {
	if len(s) == 0 || len(s) > 64 || !isLower(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		b := s[i]
		if !isLower(b) && !isDigit(b) && b != '_' && b != '.' && b != ':' && b != '-' {
			return false
		}
	}
	return true
}

// validMethod: an HTTP method token in upper case, [A-Z]{1,16}.
func validMethod[T bytestring](s T) bool {
	if len(s) == 0 || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isUpper(s[i]) {
			return false
		}
	}
	return true
}

// splitList splits a comma-separated list, rejecting empty items, duplicates,
// items that fail valid, and lists longer than maxListItems.
func splitList[T bytestring](s T, what string, valid func(T) bool) ([]string, error) {
	n := 1
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			n++
		}
	}
	if n > maxListItems {
		return nil, fmt.Errorf("%w: more than %d %ss", ErrMalformed, maxListItems, what)
	}
	out := make([]string, 0, n)
	for len(s) > 0 || len(out) < n {
		end := indexByte(s, ',')
		item := s
		if end >= 0 {
			item, s = s[:end], s[end+1:]
		} else {
			s = s[len(s):]
		}
		if !valid(item) {
			return nil, fmt.Errorf("%w: invalid %s %q", ErrMalformed, what, string(item))
		}
		for _, prev := range out {
			if prev == string(item) {
				return nil, fmt.Errorf("%w: %s %q listed twice", ErrMalformed, what, prev)
			}
		}
		out = append(out, string(item))
	}
	return out, nil
}

// parseTime parses exactly YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z, the RFC 3339 UTC
// profile amaretti writes (fatcat wrote whole seconds, bakery up to
// nanoseconds). Every field is range-checked; there is no normalisation, no
// leap second, no offset other than Z.
func parseTime[T bytestring](s T) (time.Time, error) {
	const base = len("2006-01-02T15:04:05")
	bad := func(why string) (time.Time, error) {
		return time.Time{}, fmt.Errorf("%w: time %q: %s (want YYYY-MM-DDTHH:MM:SS[.fraction]Z)", ErrMalformed, string(s), why)
	}
	if len(s) < base+1 || s[len(s)-1] != 'Z' {
		return bad("not RFC 3339 UTC")
	}
	for i := 0; i < base; i++ {
		want := byte(0)
		switch i {
		case 4, 7:
			want = '-'
		case 10:
			want = 'T'
		case 13, 16:
			want = ':'
		}
		if want != 0 && s[i] != want || want == 0 && !isDigit(s[i]) {
			return bad("not RFC 3339 UTC")
		}
	}
	num := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec := num(11, 13), num(14, 16), num(17, 19)
	nsec := 0
	if frac := s[base : len(s)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 1+maxFraction {
			return bad("fraction must be 1 to 9 digits after a dot")
		}
		for i := 1; i < len(frac); i++ {
			if !isDigit(frac[i]) {
				return bad("fraction must be digits")
			}
			nsec = nsec*10 + int(frac[i]-'0')
		}
		for i := len(frac) - 1; i < maxFraction; i++ {
			nsec *= 10
		}
	}
	switch {
	case year < minYear || year > maxYear:
		return bad("year out of range 1970–9999")
	case month < 1 || month > 12:
		return bad("month out of range")
	case day < 1 || day > daysIn(year, month):
		return bad("day out of range")
	case hour > 23 || minute > 59 || sec > 59:
		return bad("time of day out of range")
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), nil
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// FormatTime writes t in UTC as RFC 3339 with microseconds, the precision of
// amaretti's epochs: "2026-11-22T10:00:00.123456Z".
func FormatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// formatExpiry writes t in UTC as RFC 3339, with a fraction only when t has
// one at microsecond precision: "2027-01-01T00:00:00Z".
func formatExpiry(t time.Time) string {
	return t.UTC().Truncate(time.Microsecond).Format("2006-01-02T15:04:05.999999Z")
}
