// Package audit builds the records of amaretti's audit trail (epoch.Audit)
// and records refused uses of API tokens off the verify path (Refusals).
//
// Every management action of the CLI and the daemon records one
// epoch.AuditEvent: who (the caller's editor and token ids, or the
// operator's CLI with the OS user), when, from where (the daemon's
// validated client address), and what (ids, and a short fixed detail).
// Nothing here takes a token, a secret or key material: events are built
// from ids only.
package audit

import (
	"context"
	"os"
	"os/user"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/amaretti-auth/amaretti/epoch"
)

// Recorder appends events to the trail; both authoritative stores
// implement it (epoch.Audit).
type Recorder interface {
	RecordAudit(ctx context.Context, events ...epoch.AuditEvent) error
}

// Actor is who does something.
type Actor struct {
	// Kind is epoch.ActorToken, epoch.ActorCLI or epoch.ActorDaemon.
	Kind string
	// EditorID and TokenID are a daemon caller's (ActorToken).
	EditorID, TokenID string
	// OSUser is the operator's (ActorCLI).
	OSUser string
	// From is the validated client address of a request.
	From string
}

// CLI is the operator's command line, run by the current OS user (the
// account name, or $USER, or "unknown").
func CLI() Actor {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, name)
	if name == "" || len(name) > 64 {
		name = "unknown"
	}
	return Actor{Kind: epoch.ActorCLI, OSUser: name}
}

// Caller is a daemon request's caller: the editor and token ids of the
// token it presented, and its validated address.
func Caller(editorID, tokenID, from string) Actor {
	return Actor{Kind: epoch.ActorToken, EditorID: editorID, TokenID: tokenID, From: from}
}

// Daemon is the daemon acting on its own.
func Daemon() Actor { return Actor{Kind: epoch.ActorDaemon} }

// Target is what an action is done to.
type Target struct {
	EditorID, TokenID, KeyID string
	// Detail is a short text of fixed words and ids (a provider, a
	// reason); never a token or a secret.
	Detail string
}

// Event is the record of action by a on t at at.
func (a Actor) Event(action epoch.AuditAction, t Target, at time.Time) epoch.AuditEvent {
	return epoch.AuditEvent{
		At: at.UTC(), Action: action, Actor: a.Kind,
		ActorEditorID: a.EditorID, ActorTokenID: a.TokenID, OSUser: a.OSUser, From: epoch.StoredUseFrom(a.From),
		EditorID: t.EditorID, TokenID: t.TokenID, KeyID: t.KeyID, Detail: detail(t.Detail),
	}
}

// detail cuts a detail to epoch.MaxAuditDetail bytes without control
// characters.
func detail(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) <= epoch.MaxAuditDetail {
		return s
	}
	n := epoch.MaxAuditDetail
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// TokenRotated is the record of a rotation: old was replaced by
// newTokenID (same editor), the old one living on until graceEnds (zero:
// no grace). The rotation code records it with Record right after the
// store commits the rotation.
func TokenRotated(by Actor, old epoch.APIToken, newTokenID string, graceEnds time.Time, at time.Time) epoch.AuditEvent {
	d := "new token " + newTokenID
	if !graceEnds.IsZero() {
		d += "; old one valid until " + graceEnds.UTC().Format(time.RFC3339)
	}
	return by.Event(epoch.AuditTokenRotated, Target{EditorID: old.EditorID, TokenID: old.TokenID, Detail: d}, at)
}

// TokenAutoRevoked is the record of a token revoked by itself (reason: a
// fixed text such as "rotated: the new token was used" or "rotated: grace
// period ended"); the expiry notifier announces these.
func TokenAutoRevoked(t epoch.APIToken, reason string, at time.Time) epoch.AuditEvent {
	return Daemon().Event(epoch.AuditTokenAutoRevoked, Target{EditorID: t.EditorID, TokenID: t.TokenID, Detail: reason}, at)
}

// Record appends events to r. Callers record right after the action they
// describe has committed: an error here leaves the action done and
// unrecorded, which the caller reports (the CLI on stderr, the daemon in
// its log) without undoing the action.
func Record(ctx context.Context, r Recorder, events ...epoch.AuditEvent) error {
	return r.RecordAudit(ctx, events...)
}
