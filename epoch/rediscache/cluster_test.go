package rediscache_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch/rediscache"
	"github.com/amaretti-auth/amaretti/internal/testredis"
)

// TestCluster: three masters of a real Redis Cluster; two verifiers whose
// followers poll only every 30 s, so that what they learn fast they learn
// from the (sharded) feed. Editor states spread over the three nodes;
// invalidations published by one verifier reach both; the node that holds
// the invalidation channel's slot is restarted, and a token revoked while
// it is down is denied by both verifiers at once (their feeds went quiet:
// they read the store) and never admitted after the cluster is whole again.
func TestCluster(t *testing.T) {
	ctx := context.Background()
	c := testredis.StartCluster(t, 3)
	sh := newShared(t)
	// Editors until each node holds the states of at least three (ids are
	// random; about nine suffice).
	var toks []token
	per := map[*testredis.Server]int{}
	for i := 0; len(per) < 3 || slices.Min(slices.Collect(maps.Values(per))) < 3; i++ {
		if i == 200 {
			t.Fatalf("200 editors and still a node with fewer than three: %v", per)
		}
		tok := newToken(t, sh, fmt.Sprintf("editor%d", i), i+1)
		toks = append(toks, tok)
		per[c.NodeOf("amaretti:editor:"+tok.editor)]++
	}
	const poll = 30 * time.Second
	e1, f1 := verifierAt(t, c.URL(), sh, poll, 400*time.Millisecond)
	e2, f2 := verifierAt(t, c.URL(), sh, poll, 400*time.Millisecond)

	// Every editor's state is cached on the node of its slot, and the
	// three nodes hold some.
	held := map[*testredis.Server]int{}
	for _, tok := range toks {
		if !e1.admits(tok) {
			t.Fatalf("token %s denied", tok.id)
		}
		n := c.NodeOf("amaretti:editor:" + tok.editor)
		if v, err := n.Do("GET", "amaretti:editor:"+tok.editor); err != nil || v == "" {
			t.Fatalf("editor %s not cached on its node %s: %v", tok.editor, n.Addr(), err)
		}
		held[n]++
	}
	if len(held) != 3 {
		t.Fatalf("states on %d nodes, want 3", len(held))
	}

	t.Run("invalidations reach every verifier", func(t *testing.T) {
		var lags []time.Duration
		for _, tok := range toks {
			if !e2.admits(tok) {
				t.Fatal("denied before the touch")
			}
			ed, err := e1.store.Touch(ctx, tok.editor)
			if err != nil {
				t.Fatal(err)
			}
			if err := e1.layer.Announce(ctx, ed); err != nil {
				t.Fatal(err)
			}
			lags = append(lags, waitFor(t, "the touch seen by the other verifier", 5*time.Second, func() bool {
				st, err := e2.cache.State(ctx, tok.editor)
				return err == nil && st.Version == ed.Version
			}))
		}
		// The followers poll every 30 s and each wait above gives up after
		// 5 s: only the feed can have carried these.
		slices.Sort(lags)
		t.Logf("%d touches announced on one verifier, seen by the other (sharded pub/sub): median %v, max %v", len(lags), lags[len(lags)/2], lags[len(lags)-1])
	})

	t.Run("the channel's node restarts", func(t *testing.T) {
		node := c.NodeOf(rediscache.Channel)
		var onNode, elsewhere, control token
		for _, tok := range toks {
			switch {
			case c.NodeOf("amaretti:editor:"+tok.editor) == node && onNode.id == "":
				onNode = tok
			case c.NodeOf("amaretti:editor:"+tok.editor) != node && elsewhere.id == "":
				elsewhere = tok
			default:
				control = tok
			}
		}
		// Fresh tokens: the touches above ended the others.
		onNode = addToken(t, sh, onNode.editor, 1001)
		elsewhere = addToken(t, sh, elsewhere.editor, 1002)
		control = addToken(t, sh, control.editor, 1003)
		for _, e := range []*env{e1, e2} {
			for _, tok := range []token{onNode, elsewhere, control} {
				waitFor(t, "fresh token admitted", 5*time.Second, func() bool { return e.admits(tok) })
			}
		}
		var rev revocations
		stop := make(chan struct{})
		verifiers := []*env{e1, e2}
		l := runLoad(t, stop, verifiers, []token{onNode, elsewhere, control}, rev.get)
		kill := time.Now()
		node.Kill()
		waitFor(t, "both feeds down", 10*time.Second, func() bool { return !f1.downSince(kill).IsZero() && !f2.downSince(kill).IsZero() })
		for _, tok := range []token{onNode, elsewhere} {
			e1.revoke(t, tok, &rev) // the announcement fails, in part or whole
		}
		node.Start()
		back := c.WaitOK(30 * time.Second)
		waitFor(t, "both feeds back", 20*time.Second, func() bool { return f1.backAfter(kill) && f2.backAfter(kill) })
		// Reads keep going for a while on a whole cluster, caches on.
		hits := e1.layer.Stats().Hits + e2.layer.Stats().Hits
		waitFor(t, "Redis hits after the restart", 10*time.Second, func() bool {
			e1.cache.Invalidate()
			e2.cache.Invalidate()
			return e1.layer.Stats().Hits+e2.layer.Stats().Hits > hits
		})
		close(stop)
		reads, lag := l.check(t, len(verifiers), []token{onNode, elsewhere}, 2*time.Second)
		for _, e := range verifiers {
			if !e.admits(control) {
				t.Error("a token never revoked is denied")
			}
		}
		t.Logf("node restart: cluster whole again %v after the start; %d reads; tokens revoked while the node was down denied by both verifiers within %v, never admitted again", back, reads, lag)
	})
}
