package storetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// touchMany touches editorID n times from each of workers goroutines on
// each handle, all at once, and returns what each touch returned.
func (s *suite) touchMany(t *testing.T, editorID string, workers, n int, start <-chan struct{}) []touchResult {
	t.Helper()
	var mu sync.Mutex
	var out []touchResult
	var wg sync.WaitGroup
	for _, h := range []epoch.Store{s.a, s.b} {
		for range workers {
			wg.Go(func() {
				<-start
				for range n {
					e, err := h.Touch(t.Context(), editorID)
					if err != nil {
						t.Errorf("Touch: %v", err)
						return
					}
					mu.Lock()
					out = append(out, touchResult{e.AuthEpoch, e.Version})
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	return out
}

// checkTouches checks what concurrent touches of e returned, against the
// editor and the change log since startSeq: the versions are exactly
// e.Version+1 … e.Version+N (none lost, none repeated), ordered by version
// the epochs strictly grow, the final record holds the last of them, and
// the change log has one row per touch with strictly increasing versions.
func (s *suite) checkTouches(t *testing.T, e epoch.Editor, startSeq int64, results []touchResult) {
	t.Helper()
	ctx := t.Context()
	slices.SortFunc(results, func(a, b touchResult) int { return int(a.version - b.version) })
	for i, r := range results {
		if want := e.Version + int64(i) + 1; r.version != want {
			t.Fatalf("touch results hold versions %v…; want %d at position %d (a lost or repeated update)", versions(results[:i+1]), want, i)
		}
		if i > 0 && !r.epoch.After(results[i-1].epoch) {
			t.Fatalf("version %d has epoch %v, not after version %d's %v: epochs must only grow", r.version, r.epoch, results[i-1].version, results[i-1].epoch)
		}
		if i == 0 && !r.epoch.After(e.AuthEpoch) {
			t.Fatalf("first touch's epoch %v is not after the initial %v", r.epoch, e.AuthEpoch)
		}
	}
	final := must[epoch.Editor](t)(s.a.Editor(ctx, e.ID))
	last := results[len(results)-1]
	if final.Version != e.Version+int64(len(results)) || !final.AuthEpoch.Equal(last.epoch) {
		t.Fatalf("after %d touches: version %d epoch %v; want %d and %v", len(results), final.Version, final.AuthEpoch, e.Version+int64(len(results)), last.epoch)
	}
	var logged []int64
	for c := range s.changesAfter(t, startSeq) {
		if c.EditorID == e.ID {
			logged = append(logged, c.Version)
		}
	}
	if len(logged) != len(results) {
		t.Fatalf("%d change-log rows for %d touches", len(logged), len(results))
	}
	if !increasing(logged) {
		t.Fatalf("change-log versions not strictly increasing: %v", logged)
	}
}

func versions(rs []touchResult) []int64 {
	var v []int64
	for _, r := range rs {
		v = append(v, r.version)
	}
	return v
}

// changesAfter yields every change after seq, reading the log page by page.
func (s *suite) changesAfter(t *testing.T, seq int64) func(yield func(epoch.Change) bool) {
	return func(yield func(epoch.Change) bool) {
		for {
			cs, err := s.a.Changes(t.Context(), seq, 100)
			if err != nil {
				t.Fatalf("Changes: %v", err)
			}
			for _, c := range cs {
				if c.Seq <= seq {
					t.Fatalf("Changes(%d) returned %+v", seq, c)
				}
				if !yield(c) {
					return
				}
				seq = c.Seq
			}
			if len(cs) < 100 {
				return
			}
		}
	}
}

// testConcurrentTouches: goroutines on two handles touch one editor at
// once; no update is lost and epochs only grow.
func testConcurrentTouches(t *testing.T, s *suite) {
	e := s.editor(t)
	h := must[epoch.Head](t)(s.a.Head(t.Context()))
	start := make(chan struct{})
	close(start)
	results := s.touchMany(t, e.ID, 6, 10, start)
	if t.Failed() {
		return
	}
	s.checkTouches(t, e, h.Seq, results)
}

// testTouchesFromProcesses: child processes (see Main) and goroutines on
// two handles in this process touch one editor at once.
func testTouchesFromProcesses(t *testing.T, s *suite) {
	const children, workers, touches = 2, 3, 10
	e := s.editor(t)
	h := must[epoch.Head](t)(s.a.Head(t.Context()))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var procs []*childProc
	for range children {
		procs = append(procs, s.startChild(t, ctx, e.ID, workers, touches))
	}
	// Every child is ready (its store open): start them all at once,
	// with the touches in this process.
	start := make(chan struct{})
	var mu sync.Mutex
	var results []touchResult
	var wg sync.WaitGroup
	for _, p := range procs {
		p.stdin.Write([]byte("go\n"))
		wg.Go(func() {
			rs := p.collect(t)
			mu.Lock()
			results = append(results, rs...)
			mu.Unlock()
		})
	}
	close(start)
	local := s.touchMany(t, e.ID, 2, touches, start)
	wg.Wait()
	if t.Failed() {
		return
	}
	if want := children * workers * touches; len(results) != want {
		t.Fatalf("children reported %d touches, want %d", len(results), want)
	}
	t.Logf("%d touches from %d processes, %d from this one", len(results), children, len(local))
	s.checkTouches(t, e, h.Seq, append(results, local...))
}

// startChild starts the test binary as a toucher of editorID and waits
// until it says its store is open.
func (s *suite) startChild(t *testing.T, ctx context.Context, editorID string, workers, touches int) *childProc {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=touch", envAddr+"="+s.addr, envEditor+"="+editorID,
		envTouches+"="+strconv.Itoa(touches), envWorkers+"="+strconv.Itoa(workers))
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a child: %v", err)
	}
	p := &childProc{cmd: cmd.Process, wait: cmd.Wait, stdin: stdin, lines: bufio.NewScanner(stdout), stderr: stderr}
	t.Cleanup(func() { stdin.Close() })
	if !p.lines.Scan() || p.lines.Text() != "ready" {
		stdin.Close()
		werr := cmd.Wait()
		t.Fatalf("child did not get ready (does TestMain call storetest.Main?): said %q, exit %v; stderr:\n%s", p.lines.Text(), werr, stderr)
	}
	return p
}

// collect reads a child's touches until it exits.
func (p *childProc) collect(t *testing.T) []touchResult {
	var out []touchResult
	done := false
	for p.lines.Scan() {
		line := p.lines.Text()
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "touch":
			us, err1 := strconv.ParseInt(f[1], 10, 64)
			v, err2 := strconv.ParseInt(f[2], 10, 64)
			if err := errors.Join(err1, err2); err != nil {
				t.Errorf("child said %q: %v", line, err)
				continue
			}
			out = append(out, touchResult{time.UnixMicro(us).UTC(), v})
		case line == "done":
			done = true
		default:
			t.Errorf("child said %q", line)
		}
	}
	p.stdin.Close()
	if err := p.wait(); err != nil || !done {
		t.Errorf("child exited: %v (done %v); stderr:\n%s", err, done, p.stderr)
	}
	return out
}

// testTouchAllWhileRevoking: touches of everyone race revocations of one
// editor's tokens through two handles; every revoked token stays revoked
// (listed or covered by the epoch) and no version bump is lost.
func testTouchAllWhileRevoking(t *testing.T, s *suite) {
	ctx := t.Context()
	const tokens, touchAlls = 16, 3
	e := s.editor(t)
	var rows []epoch.APIToken
	for i := range tokens {
		rows = append(rows, token(e, fmt.Sprint("t", i)))
	}
	register(t, s.a, rows...)
	before := must[[]epoch.Editor](t)(s.a.List(ctx))
	h := must[epoch.Head](t)(s.a.Head(ctx))
	var wg sync.WaitGroup
	for i, r := range rows {
		wg.Go(func() {
			if _, _, err := []epoch.Store{s.a, s.b}[i%2].RevokeToken(ctx, r.TokenID); err != nil {
				t.Errorf("RevokeToken: %v", err)
			}
		})
	}
	wg.Go(func() {
		for range touchAlls {
			if n, err := s.b.TouchAll(ctx); err != nil || n != int64(len(before)) {
				t.Errorf("TouchAll = %d, %v; want %d", n, err, len(before))
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	after := must[[]epoch.Editor](t)(s.a.List(ctx))
	for i, a := range after {
		want := before[i].Version + touchAlls
		if a.ID == e.ID {
			want += tokens
		}
		if a.ID != before[i].ID || a.Version != want {
			t.Fatalf("%s: version %d, want %d (a lost update)", a.ID, a.Version, want)
		}
	}
	st := must[epoch.State](t)(s.a.State(ctx, e.ID))
	for _, r := range rows {
		if err := st.Admit(r.Created, r.TokenID); !errors.Is(err, epoch.ErrRevoked) {
			t.Errorf("token %s revoked concurrently with touches of everyone: Admit = %v (epoch %v, revoked %q)", r.Name, err, st.Epoch, st.Revoked)
		}
		if got := must[epoch.APIToken](t)(s.a.Token(ctx, r.TokenID)); got.Revoked.IsZero() {
			t.Errorf("token %s not marked revoked", r.Name)
		}
	}
	var versionsSeen []int64
	all := 0
	for c := range s.changesAfter(t, h.Seq) {
		switch c.EditorID {
		case e.ID:
			versionsSeen = append(versionsSeen, c.Version)
		case "":
			all++
		}
	}
	if len(versionsSeen) != tokens || all != touchAlls || !increasing(versionsSeen) {
		t.Fatalf("change log: editor versions %v and %d touches of everyone; want %d strictly increasing and %d", versionsSeen, all, tokens, touchAlls)
	}
}

// testConcurrentNames: concurrent registrations of one name through two
// handles take it exactly once.
func testConcurrentNames(t *testing.T, s *suite) {
	const n = 16
	e := s.editor(t)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = []epoch.Store{s.a, s.b}[i%2].RegisterToken(t.Context(), token(e, "laptop")) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, epoch.ErrNameTaken):
			t.Fatalf("RegisterToken: %v, want ErrNameTaken or success", err)
		}
	}
	if rows := must[[]epoch.APIToken](t)(s.a.Tokens(t.Context(), e.ID)); ok != 1 || len(rows) != 1 {
		t.Fatalf("%d of %d registrations of one name succeeded; %d rows", ok, n, len(rows))
	}
}

// testConcurrentLogins: concurrent first logins of one identity through
// two handles make one editor, created once, logged once.
func testConcurrentLogins(t *testing.T, s *suite) {
	const n = 8
	subject := s.username("racer")
	ids := make([]string, n)
	created := make([]bool, n)
	cs, err := s.appended(t, func() error {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				e, c, err := []epoch.Store{s.a, s.b}[i%2].Login(t.Context(), "https://id.example.org", subject, subject)
				if err != nil {
					t.Errorf("Login: %v", err)
				}
				ids[i], created[i] = e.ID, c
			})
		}
		wg.Wait()
		return nil
	})
	if err != nil || t.Failed() {
		return
	}
	if len(slices.Compact(slices.Clone(ids))) != 1 || ids[0] == "" {
		t.Fatalf("one identity became editors %v", ids)
	}
	if c := slices.Index(created, true); c < 0 || slices.Index(created[c+1:], true) >= 0 {
		t.Fatalf("created flags %v: want exactly one true", created)
	}
	if len(cs) != 1 || cs[0].EditorID != ids[0] || cs[0].Version != 1 {
		t.Fatalf("change log %+v, want one creation of %s", cs, ids[0])
	}
}

// testConcurrentCreates: concurrent creations of one username through two
// handles make one editor; the others fail with ErrExists.
func testConcurrentCreates(t *testing.T, s *suite) {
	const n = 8
	name := s.username("twin")
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = []epoch.Store{s.a, s.b}[i%2].Create(t.Context(), epoch.NewEditor{Username: name})
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, epoch.ErrExists):
			t.Fatalf("Create: %v, want ErrExists or success", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d creations of one username succeeded", ok, n)
	}
}

// increasing reports whether vs strictly increase.
func increasing(vs []int64) bool {
	for i := 1; i < len(vs); i++ {
		if vs[i] <= vs[i-1] {
			return false
		}
	}
	return true
}
