// Package systemd holds the systemd units for amarettid and the example web
// frontend (amarettid.service, webfront.service) and their environment
// files; its test checks them with systemd-analyze verify and for the
// hardening options they must keep.
package systemd
