package sqlite

import (
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

// TestAuditAppendOnly: the table itself refuses to change a recorded
// event, whatever writes to it.
func TestAuditAppendOnly(t *testing.T) {
	s, _ := open(t, &clock{t: t0})
	ctx := t.Context()
	if err := s.RecordAudit(ctx, epoch.AuditEvent{At: time.Now(), Action: epoch.AuditEditorTouched, Actor: epoch.ActorCLI, OSUser: "op"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"UPDATE audit_events SET detail = 'forged'", "UPDATE audit_events SET at = 0"} {
		if _, err := s.db.ExecContext(ctx, q); err == nil {
			t.Fatalf("%s: succeeded", q)
		}
	}
}
