// Package proxies holds the example proxy configurations in front of
// amarettid (nginx.conf, Caddyfile, traefik.yml); its tests check that
// each one says what the README's proxy table says. The end-to-end tests
// that run nginx and Caddy for real are in cmd/amarettid.
package proxies
