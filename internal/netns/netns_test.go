//go:build linux

package netns

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestTopology: two hosts on one net reach each other; with one host's
// cable down they do not, and with it up again they do.
func TestTopology(t *testing.T) {
	if err := Check(); err != nil {
		t.Fatalf("this test makes network namespaces: %v", err)
	}
	topo, err := New([]Net{{Name: "n", CIDR: "10.213.9.0/24"}}, []HostSpec{
		{Name: "a", Addrs: map[string]string{"n": "10.213.9.1"}},
		{Name: "b", Addrs: map[string]string{"n": "10.213.9.2"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := topo.Close(); err != nil {
			t.Error(err)
		}
		for _, n := range []string{topo.Switch.Name, topo.Hosts["a"].Name, topo.Hosts["b"].Name} {
			if _, err := os.Stat("/run/netns/" + n); !os.IsNotExist(err) {
				t.Errorf("%s still there after Close: %v", n, err)
			}
		}
	}()
	l, err := topo.Hosts["a"].Listen("tcp", "10.213.9.1:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dial := func(limit time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		c, err := topo.Hosts["b"].DialContext(ctx, "tcp", "10.213.9.1:7000")
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(5 * time.Second); err != nil {
		t.Fatalf("b cannot reach a: %v", err)
	}
	if err := topo.SetLink("b", "n", false); err != nil {
		t.Fatal(err)
	}
	if err := dial(300 * time.Millisecond); err == nil {
		t.Fatal("b reaches a with its cable down")
	}
	if err := topo.SetLink("b", "n", true); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for dial(time.Second) != nil {
		if time.Now().After(deadline) {
			t.Fatal("b does not reach a with its cable up again")
		}
	}
}

// TestSweep: a namespace named for a process that no longer runs is
// removed; one of this process is kept unless all is asked.
func TestSweep(t *testing.T) {
	if err := Check(); err != nil {
		t.Fatalf("this test makes network namespaces: %v", err)
	}
	dead := Prefix + "999999999-0badc0de-sw" // beyond pid_max: never running
	mine := Prefix + strconv.Itoa(os.Getpid()) + "-0badc0de-sw"
	for _, n := range []string{dead, mine} {
		if err := ip("netns", "add", n); err != nil {
			t.Fatal(err)
		}
		defer remove(n)
	}
	// Another test process's TestMain may sweep the dead one first: what
	// counts is that it is gone and this process's is not.
	if _, err := Sweep(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + dead); !os.IsNotExist(err) {
		t.Fatalf("Sweep(false) left the namespace of a dead process: %v", err)
	}
	if _, err := os.Stat("/run/netns/" + mine); err != nil {
		t.Fatalf("Sweep(false) removed this process's namespace: %v", err)
	}
	if _, err := Sweep(true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + mine); !os.IsNotExist(err) {
		t.Fatalf("Sweep(true) left this process's namespace: %v", err)
	}
}
