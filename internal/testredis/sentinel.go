package testredis

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MasterName is the name the sentinels of StartSentinel monitor.
const MasterName = "amaretti"

// replUser is the ACL user the replica replicates as (see CutReplication).
const (
	replUser     = "replication"
	replPassword = "replication-test-only"
)

// Sentinel is a Redis Sentinel deployment on loopback: a master, a replica
// of it and three sentinels monitoring the master with quorum 2, which fail
// over within a second or two of the master's death (down-after 500 ms).
//
// The sentinels are redis-server run with --sentinel: Debian's
// redis-sentinel package holds only a link to that same program, its
// configuration and a system service the tests must not start, so it is
// not needed.
type Sentinel struct {
	t testing.TB
	// Master and Replica are the data servers as started; after a
	// failover the replica is the master (see MasterAddr).
	Master, Replica *Server
	// Sentinels are the three sentinels.
	Sentinels []*Server
}

// StartSentinel starts the deployment and waits until it is ready: the
// replica's link to the master is up, and every sentinel names the master,
// knows the replica and the two other sentinels, and finds the quorum
// reachable (SENTINEL CKQUORUM). Everything is killed when the test ends.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	d := &Sentinel{t: t}
	d.Master = start(t, "--save", "", "--appendonly", "no")
	// The replica replicates as an ACL user of its own, so that a test can
	// stop its replication without touching anything else.
	if _, err := d.Master.Do("ACL", "SETUSER", replUser, "on", ">"+replPassword, "+@all", "~*", "&*"); err != nil {
		t.Fatal(err)
	}
	d.Replica = start(t, "--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", strconv.Itoa(d.Master.port),
		"--masteruser", replUser, "--masterauth", replPassword)
	waitUntil(t, "replica linked to the master", 20*time.Second, func() error {
		if v, err := d.Replica.Info("replication", "master_link_status"); err != nil || v != "up" {
			return fmt.Errorf("master_link_status %q: %v", v, err)
		}
		return nil
	})
	for range 3 {
		s := newServer(t, "--sentinel")
		s.conf = filepath.Join(s.dir, "sentinel.conf")
		conf := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %[1]s 500\n"+
			"sentinel failover-timeout %[1]s 5000\n"+
			"sentinel parallel-syncs %[1]s 1\n", MasterName, d.Master.port)
		if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		s.start()
		d.Sentinels = append(d.Sentinels, s)
	}
	d.WaitMaster(d.Master.Addr(), 30*time.Second)
	return d
}

// URL returns the redis:// URL NewClient reads as Sentinel: the sentinels'
// addresses and the master's name.
func (d *Sentinel) URL() string {
	u := "redis://" + d.Sentinels[0].Addr() + "/0?master_name=" + MasterName
	for _, s := range d.Sentinels[1:] {
		u += "&addr=" + s.Addr()
	}
	return u
}

// WaitMaster waits until every sentinel names addr as the master, knows a
// replica and the two other sentinels, and finds the quorum reachable; it
// returns how long that took.
func (d *Sentinel) WaitMaster(addr string, within time.Duration) time.Duration {
	d.t.Helper()
	return waitUntil(d.t, "sentinels agree on master "+addr, within, func() error {
		for _, s := range d.Sentinels {
			got, err := s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName)
			if err != nil {
				return err
			}
			if a := strings.Replace(got, "\n", ":", 1); a != addr {
				return fmt.Errorf("sentinel %s names %s", s.Addr(), a)
			}
			if n, err := s.Do("SENTINEL", "REPLICAS", MasterName); err != nil || !strings.Contains(n, "slave") {
				return fmt.Errorf("sentinel %s knows no replica: %v", s.Addr(), err)
			}
			if others, err := s.Do("SENTINEL", "SENTINELS", MasterName); err != nil || fields(others, "runid") != 2 {
				return fmt.Errorf("sentinel %s does not know the two others yet: %v", s.Addr(), err)
			}
			if _, err := s.Do("SENTINEL", "CKQUORUM", MasterName); err != nil {
				return fmt.Errorf("sentinel %s: %w", s.Addr(), err)
			}
		}
		return nil
	})
}

// CutReplication stops the replica from receiving anything more from the
// master while both keep running: the replica's ACL user is switched off
// and its connection killed, so it cannot reconnect. It returns once the
// master counts no replica and the replica's link is down. A write to the
// master after this is one the replica never received.
func (d *Sentinel) CutReplication() {
	d.t.Helper()
	if _, err := d.Master.Do("ACL", "SETUSER", replUser, "off"); err != nil {
		d.t.Fatal(err)
	}
	if _, err := d.Master.Do("CLIENT", "KILL", "USER", replUser); err != nil {
		d.t.Fatal(err)
	}
	waitUntil(d.t, "replication cut", 10*time.Second, func() error {
		n, err := d.Master.Info("replication", "connected_slaves")
		if err != nil || n != "0" {
			return fmt.Errorf("master has %q replicas: %v", n, err)
		}
		if v, err := d.Replica.Info("replication", "master_link_status"); err != nil || v != "down" {
			return fmt.Errorf("replica link %q: %v", v, err)
		}
		return nil
	})
}

// waitUntil polls ready every 10 ms until it returns nil, failing the test
// with its last error after within; it returns how long it took.
func waitUntil(t testing.TB, what string, within time.Duration, ready func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < within {
		if last = ready(); last == nil {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, within, last)
	return 0
}

// fields counts the lines of a flattened reply equal to name: the entries
// of an array of field-value lists.
func fields(reply, name string) int {
	n := 0
	for _, l := range strings.Split(reply, "\n") {
		if l == name {
			n++
		}
	}
	return n
}
