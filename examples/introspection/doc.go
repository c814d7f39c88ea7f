// Package introspection tests amarettid's RFC 7662 endpoint
// (POST /v1/introspect) with a real introspection client from the Go
// ecosystem: github.com/zitadel/oidc/v3's resource-server client. It lives
// in the examples module so that the library's go.mod carries only what the
// library imports.
package introspection
