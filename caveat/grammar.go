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
// nothing else, in one pass.
func split[T bytestring](text T) (condition[T], error) {
	var c condition[T]
	if len(text) == 0 {
		return c, fmt.Errorf("%w: empty caveat", ErrMalformed)
	}
	// sp holds the offsets of the first three spaces.
	var sp [3]int
	n := 0
	for i, b := range []byte(text) {
		if b-0x20 > 0x7e-0x20 {
			return c, fmt.Errorf("%w: byte 0x%02x at offset %d is not printable ASCII", ErrMalformed, b, i)
		}
		if b == ' ' {
			if n < len(sp) {
				sp[n] = i
			}
			n++
		}
	}
	if n == 0 {
		return c, fmt.Errorf("%w: no separator", ErrMalformed)
	}
	c.name = text[:sp[0]]
	if !validName(c.name) {
		return c, fmt.Errorf("%w: caveat name must match [a-z][a-z0-9_-]{0,63}", ErrMalformed)
	}
	if string(c.name) == timeBefore {
		c.value = text[sp[0]+1:]
		if n > 1 {
			return c, fmt.Errorf("%w: more than one separator or trailing data", ErrMalformed)
		}
	} else {
		rest := text[sp[0]+1:]
		if n < 2 || sp[1] != sp[0]+2 || (rest[0] != '=' && rest[0] != '<' && rest[0] != '>') {
			return c, fmt.Errorf("%w: expected \"name op value\" with op one of = < > and single spaces", ErrMalformed)
		}
		c.op = rest[:1]
		c.value = text[sp[1]+1:]
		if n > 2 {
			return c, fmt.Errorf("%w: more than one separator or trailing data", ErrMalformed)
		}
	}
	if len(c.value) == 0 {
		return c, fmt.Errorf("%w: empty value", ErrMalformed)
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

// ValidUsername reports whether s is a well-formed username: 1 to 64
// characters of [A-Za-z0-9_.-], starting with a letter or digit. Usernames
// are compared case-insensitively by the stores.
func ValidUsername[T bytestring](s T) bool {
	if len(s) == 0 || len(s) > 64 || !(isLower(s[0]) || isUpper(s[0]) || isDigit(s[0])) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if b := s[i]; !isLower(b) && !isUpper(b) && !isDigit(b) && b != '_' && b != '.' && b != '-' {
			return false
		}
	}
	return true
}

// ValidTokenID reports whether id is a token id: an upper-case UUID,
// XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX of [0-9A-F].
func ValidTokenID[T bytestring](id T) bool {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return false
	}
	// Every byte is a hex digit or a dash, and the four dashes are the
	// ones checked above: one table lookup per byte and a branch that a
	// valid id never takes (this runs on every cold verification).
	dashes := 0
	for i := 0; i < len(id); i++ {
		c := tokenIDClass[id[i]]
		if c == 0 {
			return false
		}
		dashes += int(c >> 1)
	}
	return dashes == 4
}

// tokenIDClass is 1 for the bytes [0-9A-F] and 2 for '-', for
// ValidTokenID. It is never written.
var tokenIDClass = [256]uint8{
	'0': 1, '1': 1, '2': 1, '3': 1, '4': 1, '5': 1, '6': 1, '7': 1, '8': 1, '9': 1,
	'A': 1, 'B': 1, 'C': 1, 'D': 1, 'E': 1, 'F': 1, '-': 2,
}

// ValidEndpoint reports whether s is a well-formed endpoint name:
// [A-Za-z0-9][A-Za-z0-9_.:-]{0,127}, e.g. "create_editgroup".
func ValidEndpoint[T bytestring](s T) bool { return validEndpoint(s) }

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
	t, why := scanTime(s)
	if why != "" {
		return badTime(s, why)
	}
	return t, nil
}

// scanTime is parseTime without building an error: it returns the time, or
// why s is refused. It is hand-written rather than time.Parse because it
// must refuse what time.Parse tolerates (other offsets, a comma before the
// fraction, leap seconds) and because it reads each byte once, with no
// allocation, on every cold verification.
func scanTime[T bytestring](s T) (t time.Time, why string) {
	const base = len("2006-01-02T15:04:05")
	if len(s) < base+1 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return t, "not RFC 3339 UTC"
	}
	y1, ok1 := digits2(s[0], s[1])
	y2, ok2 := digits2(s[2], s[3])
	month, ok3 := digits2(s[5], s[6])
	day, ok4 := digits2(s[8], s[9])
	hour, ok5 := digits2(s[11], s[12])
	minute, ok6 := digits2(s[14], s[15])
	sec, ok7 := digits2(s[17], s[18])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
		return t, "not RFC 3339 UTC"
	}
	year := y1*100 + y2
	nsec := 0
	if frac := s[base : len(s)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 1+maxFraction {
			return t, "fraction must be 1 to 9 digits after a dot"
		}
		for i := 1; i < len(frac); i++ {
			d := frac[i] - '0'
			if d > 9 {
				return t, "fraction must be digits"
			}
			nsec = nsec*10 + int(d)
		}
		for i := len(frac) - 1; i < maxFraction; i++ {
			nsec *= 10
		}
	}
	switch {
	case year < minYear || year > maxYear:
		return t, "year out of range 1970–9999"
	case month < 1 || month > 12:
		return t, "month out of range"
	case day < 1 || day > daysIn(year, month):
		return t, "day out of range"
	case hour > 23 || minute > 59 || sec > 59:
		return t, "time of day out of range"
	}
	secs := daysSinceEpoch(year, month, day)*86400 + int64(hour*3600+minute*60+sec)
	return time.Unix(secs, int64(nsec)).UTC(), ""
}

// digits2 returns the value of two decimal digits and whether both are
// digits.
func digits2(a, b byte) (int, bool) {
	a, b = a-'0', b-'0'
	return int(a)*10 + int(b), a <= 9 && b <= 9
}

func badTime[T bytestring](s T, why string) (time.Time, error) {
	return time.Time{}, fmt.Errorf("%w: time %q: %s (want YYYY-MM-DDTHH:MM:SS[.fraction]Z)", ErrMalformed, string(s), why)
}

// daysSinceEpoch returns the days from 1970-01-01 to a valid proleptic
// Gregorian date (Howard Hinnant's days_from_civil).
func daysSinceEpoch(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097 + doe - 719468)
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
