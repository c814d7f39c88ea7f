package verifier

import (
	"encoding/json"
	"time"
)

// AppendJSON appends the identity's JSON form to b: byte for byte what
// json.Marshal(id) writes, without reflection and without allocating when
// b has room (a string that needs escaping and a time that is not UTC take
// encoding/json's own path). It fails where json.Marshal fails: a time
// whose year is outside [0, 9999].
func (id Identity) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"editor_id":`...)
	b = appendJSONString(b, id.EditorID)
	if id.Username != "" {
		b = append(b, `,"username":`...)
		b = appendJSONString(b, id.Username)
	}
	if id.Kind != "" {
		b = append(b, `,"kind":`...)
		b = appendJSONString(b, string(id.Kind))
	}
	b = append(b, `,"role":`...)
	b = appendJSONString(b, string(id.Role))
	if id.TokenID != "" {
		b = append(b, `,"token_id":`...)
		b = appendJSONString(b, id.TokenID)
	}
	b = append(b, `,"key_id":`...)
	b = appendJSONString(b, id.KeyID)
	b = append(b, `,"created":`...)
	var err error
	if b, err = appendJSONTime(b, id.Created); err != nil {
		return nil, err
	}
	if !id.Expires.IsZero() {
		b = append(b, `,"expires":`...)
		if b, err = appendJSONTime(b, id.Expires); err != nil {
			return nil, err
		}
	}
	if len(id.Rights) > 0 {
		b = append(b, `,"rights":[`...)
		for i, r := range id.Rights {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, r)
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// appendJSONString appends s as encoding/json writes it: printable ASCII
// other than the quote, the backslash and the HTML characters (which
// encoding/json escapes) is copied; any other string takes json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime appends t as time.Time.MarshalJSON does: RFC 3339 with
// nanoseconds, quoted. Times outside UTC or outside years [0, 9999] take
// MarshalJSON itself, with its checks.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); t.Location() != time.UTC || y < 0 || y > 9999 {
		q, err := t.MarshalJSON()
		if err != nil {
			return nil, err
		}
		return append(b, q...), nil
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}
