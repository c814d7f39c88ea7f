// Package e2e holds the end-to-end test across hosts (e2e_test.go, Linux
// only, as root): PostgreSQL, Redis, two amarettid verifiers, the web
// frontend and a client, each in a network namespace of its own, joined only
// by veth pairs to bridges (internal/netns), with links cut and restored
// under the test. The package has no code of its own.
package e2e
