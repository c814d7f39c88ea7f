package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/amaretti-auth/amaretti/epoch"
)

// TestOrderingRule: while several writers on two stores change editors,
// followers reading the change log never see a seq at or below one they
// have already read (epoch.ChangeLog), and end with every change.
func TestOrderingRule(t *testing.T) {
	ctx := context.Background()
	a, url := open(t)
	b := openURL(t, url)
	var ids []string
	for i := range 4 {
		e, _ := a.Create(ctx, epoch.NewEditor{Username: fmt.Sprint("e", i)})
		ids = append(ids, e.ID)
	}
	start, _ := a.Head(ctx)
	const writers, changes = 8, 25
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			s := []*Store{a, b}[w%2]
			for i := range changes {
				var err error
				if i%10 == 9 {
					_, err = s.TouchAll(ctx)
				} else {
					_, err = s.Touch(ctx, ids[(w+i)%len(ids)])
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var followers sync.WaitGroup
	read := make([]int, 3)
	for f := range 3 {
		followers.Go(func() {
			s := []*Store{a, b}[f%2]
			last := start.Seq
			for {
				finished := false
				select {
				case <-done:
					finished = true
				default:
				}
				cs, err := s.Changes(ctx, last, 7)
				if err != nil {
					t.Error(err)
					return
				}
				for _, c := range cs {
					if c.Seq <= last {
						t.Errorf("follower %d saw seq %d after %d", f, c.Seq, last)
						return
					}
					if c.Seq != last+1 {
						t.Errorf("follower %d: seq %d follows %d (a change it will never see)", f, c.Seq, last)
						return
					}
					last = c.Seq
					read[f]++
				}
				if finished && len(cs) == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	followers.Wait()
	for f, n := range read {
		if n != writers*changes {
			t.Errorf("follower %d read %d changes, want %d", f, n, writers*changes)
		}
	}
}
