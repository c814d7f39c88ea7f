package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
)

// errBadBody: a request body is not what the endpoint reads. Its messages
// are fixed sentences and field names the endpoint defines, never a key or
// a value the client sent, so they are safe to answer and to log.
var errBadBody = errors.New("unreadable JSON body")

// readBody reads a request's body (bounded by the server's MaxBytesReader);
// empty means none was sent.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength == 0 || r.Body == nil {
		return nil, nil
	}
	raw, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%w: the body is over the size limit", errBadBody)
	case err != nil:
		return nil, fmt.Errorf("%w: the body could not be read", errBadBody)
	}
	return raw, nil
}

// decodeStrict decodes raw, one JSON object, into v, a pointer to a struct
// whose fields name their keys in json tags. It is stricter than
// encoding/json, which matches keys case-insensitively and lets the last of
// repeated keys win: every key must be exactly one of v's, at most once, in
// every object of the body; nothing may follow the object. Empty raw
// leaves v as it is.
func decodeStrict(raw []byte, v any) error {
	if len(raw) == 0 {
		return nil
	}
	fields := jsonFields(v)
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("%w: the body must be one JSON object", errBadBody)
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: not valid JSON", errBadBody)
		}
		key, _ := tok.(string)
		switch {
		case !fields[key]:
			return fmt.Errorf("%w: unknown field", errBadBody)
		case seen[key]:
			return fmt.Errorf("%w: a field is repeated", errBadBody)
		}
		seen[key] = true
		if err := skipValue(dec); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%w: not valid JSON", errBadBody)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON object", errBadBody)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			// The field is one of v's (checked above); typeErr.Value may
			// hold the value, so it is left out.
			if field, _, _ := strings.Cut(typeErr.Field, "."); fields[field] {
				return fmt.Errorf("%w: field %q has the wrong type (want %s)", errBadBody, field, jsonKind(fieldType(v, field)))
			}
		}
		return fmt.Errorf("%w: not valid JSON", errBadBody)
	}
	return nil
}

// skipValue reads one value, refusing objects with repeated keys inside it
// (any case: encoding/json folds them).
func skipValue(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: not valid JSON", errBadBody)
	}
	switch tok {
	case json.Delim('['):
		for dec.More() {
			if err := skipValue(dec); err != nil {
				return err
			}
		}
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return fmt.Errorf("%w: not valid JSON", errBadBody)
			}
			key := strings.ToLower(k.(string))
			if seen[key] {
				return fmt.Errorf("%w: a field is repeated", errBadBody)
			}
			seen[key] = true
			if err := skipValue(dec); err != nil {
				return err
			}
		}
	default:
		return nil
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return fmt.Errorf("%w: not valid JSON", errBadBody)
	}
	return nil
}

// jsonFields returns the keys of the struct v points to, from its json tags.
func jsonFields(v any) map[string]bool {
	t := reflect.TypeOf(v).Elem()
	out := make(map[string]bool, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

// fieldType is the type of the field of the struct v points to whose key is
// name.
func fieldType(v any, name string) reflect.Type {
	t := reflect.TypeOf(v).Elem()
	for i := 0; i < t.NumField(); i++ {
		if key, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); key == name {
			return t.Field(i).Type
		}
	}
	return t
}

// jsonKind names the JSON form of a Go type, for a type error.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array of " + strings.TrimPrefix(jsonKind(t.Elem()), "a ") + "s"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "a number"
	}
	return "another type"
}

// isJSON reports whether a request declares a JSON body.
func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}
