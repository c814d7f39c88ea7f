package testredis

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// slots is the number of hash slots of a Redis Cluster.
const slots = 16384

// Cluster is a Redis Cluster of masters without replicas on loopback. A
// node that dies takes its slots with it (cluster-require-full-coverage
// no: the other slots stay served), and comes back with its identity and
// slots on Restart (its nodes.conf is kept in its directory).
type Cluster struct {
	t testing.TB
	// Nodes are the masters; node i serves the i-th equal share of the
	// slots.
	Nodes []*Server
}

// StartCluster starts n masters (cluster-enabled, node timeout 1 s), gives
// each an equal range of slots (CLUSTER ADDSLOTSRANGE), introduces them
// (CLUSTER MEET) and waits until every node reports the cluster whole (see
// WaitOK). Everything is killed when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	for range n {
		c.Nodes = append(c.Nodes, start(t, "--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no"))
	}
	for i, s := range c.Nodes {
		lo, hi := i*slots/n, (i+1)*slots/n-1
		if _, err := s.Do("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range c.Nodes[1:] {
		if _, err := c.Nodes[0].Do("CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(s.port)); err != nil {
			t.Fatal(err)
		}
	}
	c.WaitOK(30 * time.Second)
	return c
}

// URL returns the redis:// URL NewClient reads as Cluster: one node as the
// host, the others as addr parameters.
func (c *Cluster) URL() string {
	u := "redis://" + c.Nodes[0].Addr()
	for i, s := range c.Nodes[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + s.Addr()
	}
	return u
}

// WaitOK waits until every node reports cluster_state:ok, knows every
// node, and counts every slot as served by a node it finds healthy
// (cluster_slots_ok); it returns how long that took.
func (c *Cluster) WaitOK(within time.Duration) time.Duration {
	c.t.Helper()
	want := map[string]string{"cluster_state": "ok", "cluster_known_nodes": strconv.Itoa(len(c.Nodes)), "cluster_slots_ok": strconv.Itoa(slots)}
	return waitUntil(c.t, "cluster whole", within, func() error {
		for _, s := range c.Nodes {
			info, err := s.Do("CLUSTER", "INFO")
			if err != nil {
				return err
			}
			for k, v := range want {
				if !strings.Contains(info, k+":"+v+"\r") && !strings.Contains(info, k+":"+v+"\n") {
					return fmt.Errorf("node %s: want %s:%s in\n%s", s.Addr(), k, v, info)
				}
			}
		}
		return nil
	})
}

// NodeOf returns the node serving a key (by CLUSTER KEYSLOT and the slot
// ranges StartCluster gave).
func (c *Cluster) NodeOf(key string) *Server {
	c.t.Helper()
	v, err := c.Nodes[0].Do("CLUSTER", "KEYSLOT", key)
	if err != nil {
		c.t.Fatal(err)
	}
	slot, err := strconv.Atoi(v)
	if err != nil {
		c.t.Fatal(err)
	}
	n := len(c.Nodes)
	for i := range n {
		if slot <= (i+1)*slots/n-1 {
			return c.Nodes[i]
		}
	}
	c.t.Fatalf("slot %d out of range", slot)
	return nil
}
