package epoch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// AuditAction names what an audit event records.
type AuditAction string

// The actions of the audit trail. Every management action of the CLI and
// the daemon records one; refused uses of API tokens record
// AuditTokenRefused; pruning the trail records AuditPruned.
const (
	AuditEditorCreated     AuditAction = "editor.created"
	AuditEditorLinked      AuditAction = "editor.linked"
	AuditEditorUnlinked    AuditAction = "editor.unlinked"
	AuditEditorTouched     AuditAction = "editor.touched"
	AuditEditorTouchedAll  AuditAction = "editor.touched_all"
	AuditEditorLocked      AuditAction = "editor.locked"
	AuditEditorUnlocked    AuditAction = "editor.unlocked"
	AuditEditorActivated   AuditAction = "editor.activated"
	AuditEditorDeactivated AuditAction = "editor.deactivated"
	AuditTokenCreated      AuditAction = "token.created"
	AuditTokenMinted       AuditAction = "token.minted"
	AuditTokenRotated      AuditAction = "token.rotated"
	AuditTokenRevoked      AuditAction = "token.revoked"
	AuditTokenAutoRevoked  AuditAction = "token.auto_revoked"
	AuditTokenExchanged    AuditAction = "token.exchanged"
	AuditTokenRefused      AuditAction = "token.refused"
	AuditKeyRotated        AuditAction = "key.rotated"
	AuditKeyRetired        AuditAction = "key.retired"
	AuditKeyImported       AuditAction = "key.imported"
	AuditPruned            AuditAction = "audit.pruned"
)

// Who acts, in AuditEvent.Actor.
const (
	// ActorToken: a request to the daemon, authenticated by a token of
	// ActorEditorID (ActorTokenID when the token has an id).
	ActorToken = "token"
	// ActorCLI: the operator's command line ("operator CLI"), run by the
	// OS user OSUser.
	ActorCLI = "cli"
	// ActorDaemon: the daemon on its own (a refused use it observed, an
	// automatic revocation, pruning).
	ActorDaemon = "daemon"
)

// MaxAuditDetail bounds AuditEvent.Detail.
const MaxAuditDetail = 256

// ErrInvalidAudit means an audit event has an unknown actor, a missing
// action, or a field that is too long or holds control characters.
var ErrInvalidAudit = errors.New("invalid audit event")

// AuditEvent is one record of the audit trail: who did what, when and from
// where. It holds ids, names and short fixed texts only — never a token,
// a secret or key material. Records are append-only: no API deletes one;
// only pruning by age (PruneAudit) removes the oldest.
type AuditEvent struct {
	// ID is assigned by the store, increasing; a List cursor.
	ID int64 `json:"id"`
	// At is when it happened (the recorder's clock).
	At     time.Time   `json:"at"`
	Action AuditAction `json:"action"`
	// Actor is ActorToken, ActorCLI or ActorDaemon.
	Actor string `json:"actor"`
	// ActorEditorID and ActorTokenID identify the caller of a daemon
	// request (ActorToken).
	ActorEditorID string `json:"actor_editor_id,omitempty"`
	ActorTokenID  string `json:"actor_token_id,omitempty"`
	// OSUser is the operating-system user who ran the CLI (ActorCLI).
	OSUser string `json:"os_user,omitempty"`
	// From is the validated client address of a daemon request.
	From string `json:"from,omitempty"`
	// EditorID, TokenID and KeyID are what the action was done to.
	EditorID string `json:"editor_id,omitempty"`
	TokenID  string `json:"token_id,omitempty"`
	KeyID    string `json:"key_id,omitempty"`
	// Detail is a short text of fixed words and ids: a provider, a
	// reason, a parent token id.
	Detail string `json:"detail,omitempty"`
	// Count is how many times it happened, for events that aggregate
	// (AuditTokenRefused, AuditPruned); 1 otherwise.
	Count int64 `json:"count"`
}

// Check validates an event before a store records it: a known actor, an
// action, short printable fields. Errors wrap ErrInvalidAudit.
func (e AuditEvent) Check() error {
	switch {
	case e.Action == "" || len(e.Action) > 64:
		return fmt.Errorf("%w: the action must be 1 to 64 characters", ErrInvalidAudit)
	case e.Actor != ActorToken && e.Actor != ActorCLI && e.Actor != ActorDaemon:
		return fmt.Errorf("%w: unknown actor", ErrInvalidAudit)
	case e.At.IsZero():
		return fmt.Errorf("%w: no time", ErrInvalidAudit)
	case e.Count < 0:
		return fmt.Errorf("%w: negative count", ErrInvalidAudit)
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"action", string(e.Action), 64}, {"actor editor id", e.ActorEditorID, 64}, {"actor token id", e.ActorTokenID, 64},
		{"os user", e.OSUser, 64}, {"from", e.From, MaxUseFrom}, {"editor id", e.EditorID, 64}, {"token id", e.TokenID, 64},
		{"key id", e.KeyID, 255}, {"detail", e.Detail, MaxAuditDetail},
	} {
		if len(f.v) > f.max || !utf8.ValidString(f.v) || strings.IndexFunc(f.v, unicode.IsControl) >= 0 {
			return fmt.Errorf("%w: %s must be at most %d bytes of UTF-8 without control characters", ErrInvalidAudit, f.name, f.max)
		}
	}
	return nil
}

// AuditFilter selects audit events for AuditEvents.
type AuditFilter struct {
	// EditorID selects events done by or to the editor.
	EditorID string
	// TokenID selects events done with or to the token.
	TokenID string
	// Action selects one action.
	Action AuditAction
	// Since selects events at or after it.
	Since time.Time
	// Before is a cursor: events with an ID below it (0: from the newest).
	Before int64
	// Limit is the most events returned (default and maximum
	// MaxAuditPage).
	Limit int
}

// MaxAuditPage bounds AuditFilter.Limit.
const MaxAuditPage = 1000

// PageLimit is f.Limit within 1 and MaxAuditPage (MaxAuditPage when unset).
func (f AuditFilter) PageLimit() int {
	if f.Limit <= 0 || f.Limit > MaxAuditPage {
		return MaxAuditPage
	}
	return f.Limit
}

// Audit is the audit trail: an append-only table of the store. Both
// authoritative stores implement it.
type Audit interface {
	// RecordAudit appends events in one transaction; ErrInvalidAudit for
	// an event that fails Check (nothing is recorded then). IDs and zero
	// counts are filled in by the store.
	RecordAudit(ctx context.Context, events ...AuditEvent) error
	// AuditEvents returns the events f selects, newest (highest ID) first,
	// and the cursor of the next page (f.Before for the next call), 0 when
	// there is none.
	AuditEvents(ctx context.Context, f AuditFilter) (events []AuditEvent, next int64, err error)
	// PruneAudit deletes the events older than before — the only deletion
	// there is — and records an AuditPruned event (by actor) with the
	// count, in the same transaction; it returns the count.
	PruneAudit(ctx context.Context, before time.Time, actor AuditEvent) (int64, error)
}

// Notifications are the claims of the expiry notifier: one row per
// (token, event), so that each notification is sent once across restarts
// and across several daemons on one store.
type Notifications interface {
	// ClaimNotification claims the notification event of tokenID at now:
	// true when this caller is to send it — no row existed, or the row was
	// released, or it was claimed before now-lease and never marked sent
	// (its claimer died). false when it is sent or claimed by someone else.
	ClaimNotification(ctx context.Context, tokenID, event string, now time.Time, lease time.Duration) (bool, error)
	// NotificationSent marks a claimed notification sent, for good.
	NotificationSent(ctx context.Context, tokenID, event string, at time.Time) error
	// ReleaseNotification gives a claim up (the send failed): the next
	// claim of it succeeds at once. A sent notification stays sent.
	ReleaseNotification(ctx context.Context, tokenID, event string) error
}

// RotationRetired is the event a store records, in the transaction of
// RetireRotated, for a rotated token it revoked at now: its successor was
// used or revoked, or its grace ended.
func RotationRetired(t APIToken, now time.Time) AuditEvent {
	reason := "rotated: the new token " + t.RotatedTo + " was used or revoked"
	if !t.GraceUntil.IsZero() && !t.GraceUntil.After(now) {
		reason = "rotated: the grace period ended"
	}
	return AuditEvent{At: now, Action: AuditTokenAutoRevoked, Actor: ActorDaemon, EditorID: t.EditorID, TokenID: t.TokenID, Detail: reason, Count: 1}
}
