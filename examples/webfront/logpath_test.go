package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestNoPathInLogs: a token pasted into a URL path (a link shared by
// mistake, a client that puts it there) never reaches the frontend's log:
// request lines name the route, not the path the client sent, for every
// answer (found, not found, a refused Host).
func TestNoPathInLogs(t *testing.T) {
	d := newDeployment(t)
	tok := d.login(t, "alice") // a secret the deployment's cleanup searches the logs for
	for _, tc := range []struct {
		name, method, path string
		headers            []string
		want               int
	}{
		{"unknown path", "GET", "/" + tok, nil, http.StatusNotFound},
		{"static", "GET", "/static/" + tok, nil, http.StatusNotFound},
		{"route with a value", "POST", "/tokens/" + tok + "/revoke", nil, 0},
		{"refused Host", "GET", "/" + tok, []string{"Host", "attacker.example"}, http.StatusMisdirectedRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := d.do(t, tc.method, tc.path, tok, nil, tc.headers...)
			if tc.want != 0 && a.status != tc.want {
				t.Fatalf("%d, want %d", a.status, tc.want)
			}
			if strings.Contains(d.logs.String(), tok) {
				t.Fatal("the token reached the frontend's log")
			}
		})
	}
}
