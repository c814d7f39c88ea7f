package epoch

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/amaretti-auth/amaretti/caveat"
)

// The records and errors below are the store contract every authoritative
// store (epoch/sqlite, epoch/postgres) speaks; programs depend on small
// interfaces of their own over them, never on a concrete store, and
// epoch/storetest checks that both stores behave the same.

// Store errors callers can act on.
var (
	// ErrExists means an editor with that id or username already exists.
	ErrExists = errors.New("editor already exists")
	// ErrLinked means a login identity is already linked: the provider's
	// subject to another editor, or the editor to another subject of the
	// same provider.
	ErrLinked = errors.New("identity already linked")
	// ErrInvalidLink means a provider or subject is empty, too long, or not
	// printable ASCII.
	ErrInvalidLink = errors.New("invalid login identity")
	// ErrInvalidEditor means a new editor has a bad role, username or id.
	ErrInvalidEditor = errors.New("invalid editor")
	// ErrTokenExists means a token id is registered already.
	ErrTokenExists = errors.New("token id already registered")
	// ErrSchemaOld means a database's schema is older than this program
	// and the store was told not to upgrade it (run "amaretti migrate").
	ErrSchemaOld = errors.New("the database schema is older than this program: run \"amaretti migrate\"")
	// ErrTokenNotFound means no API token has that id.
	ErrTokenNotFound = errors.New("unknown API token")
	// ErrNameTaken means the editor already has a live token of that name.
	ErrNameTaken = errors.New("the editor already has a live token of that name")
	// ErrAlreadyRevoked means the token was revoked before.
	ErrAlreadyRevoked = errors.New("token already revoked")
	// ErrInvalidToken means a row to register has a bad id, name or
	// description.
	ErrInvalidToken = errors.New("invalid token row")
	// ErrTooManyTokens means the editor has as many live API tokens as it
	// may have, or as many revoked ones listed in its state: a client
	// error, not a failure of the store.
	ErrTooManyTokens = errors.New("too many API tokens")
)

// Defaults every store applies to its limits and its change log.
const (
	// DefaultMaxLiveTokens is how many live API tokens an editor may have.
	DefaultMaxLiveTokens = 100
	// DefaultMaxRevokedTokens is how many revoked tokens (revoked one by
	// one, created after the epoch, not expired) an editor's state may list.
	DefaultMaxRevokedTokens = 1000
	// DefaultChangeRetention is how long the change log keeps rows.
	DefaultChangeRetention = 24 * time.Hour
)

// NewEditor describes an editor to create.
type NewEditor struct {
	// ID is the editor id; empty generates one (26 characters of
	// lower-case base32, like fatcat's).
	ID string
	// Username is unique, case-insensitively: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}.
	Username string
	// Role defaults to RoleEditor.
	Role Role
	// Epoch is the initial auth_epoch; zero means now. An early epoch keeps
	// tokens minted elsewhere before the import valid, as in fatcat's
	// bootstrap.
	Epoch time.Time
	// Bot marks an automated account.
	Bot bool
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Prepare validates a new editor and fills in its defaults: role editor,
// and an id read from random when it has none. Errors wrap
// ErrInvalidEditor.
func (n NewEditor) Prepare(random io.Reader) (NewEditor, error) {
	if n.Role == "" {
		n.Role = RoleEditor
	}
	switch {
	case !n.Role.Valid():
		return n, fmt.Errorf("%w: role %q (want editor, bot, admin or superuser)", ErrInvalidEditor, n.Role)
	case !caveat.ValidUsername(n.Username):
		return n, fmt.Errorf("%w: username %q: want [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", ErrInvalidEditor, n.Username)
	case n.ID != "" && !caveat.ValidEditorID(n.ID):
		return n, fmt.Errorf("%w: id %q: want [a-z0-9][a-z0-9_-]{0,63}", ErrInvalidEditor, n.ID)
	}
	if n.ID == "" {
		var b [16]byte
		if _, err := io.ReadFull(random, b[:]); err != nil {
			return n, fmt.Errorf("editor id: %w", err)
		}
		n.ID = idEncoding.EncodeToString(b[:])
	}
	return n, nil
}

// APIToken is a registry row: what is known of an API token. The secret is
// never stored. Its JSON form is what the CLI and the daemon show; unset
// times are left out.
type APIToken struct {
	TokenID     string `json:"token_id"`
	EditorID    string `json:"editor_id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Rights the token is limited to; nil (JSON null) when unrestricted.
	Rights []string `json:"rights"`
	// Endpoint the token is limited to; "" for any.
	Endpoint string    `json:"endpoint,omitempty"`
	Created  time.Time `json:"created"`
	// Creator is the editor id of whoever created the token (the editor,
	// an admin, or "cli").
	Creator string `json:"creator"`
	// Expires, Revoked and LastUsed are zero when unset.
	Expires  time.Time `json:"expires,omitzero"`
	Revoked  time.Time `json:"revoked,omitzero"`
	LastUsed time.Time `json:"last_used,omitzero"`
	// LastUsedFrom is the client address of the last use.
	LastUsedFrom string `json:"last_used_from,omitempty"`
	// Parents are the ids of the tokens this one was derived from (its
	// parent_token caveats): revoking any of them revokes it.
	Parents []string `json:"parents,omitempty"`
	// RotatedTo is the id of the token that replaces this one (see
	// Rotations); "" when it was not rotated.
	RotatedTo string `json:"rotated_to,omitempty"`
	// RotatedFrom is the id of the token this one replaced; "" for none.
	RotatedFrom string `json:"rotated_from,omitempty"`
	// GraceUntil is when a rotated token is revoked at the latest (zero
	// when it was not rotated).
	GraceUntil time.Time `json:"grace_until,omitzero"`
	// LastAttenuation is a readable summary of the caveats the token last
	// used had beyond those it was minted with (Use.Attenuation); "" when
	// it was used as minted.
	LastAttenuation string `json:"last_attenuation,omitempty"`
	// LastAttenuationID is a short fingerprint of those caveats; "" when
	// there were none.
	LastAttenuationID string `json:"last_attenuation_id,omitempty"`
	// Caveats are the texts of the caveats the token carries beyond what
	// the other fields record (method, path_prefix, caveats an application
	// registered: not rights, endpoint, parent_token, expiry or claims),
	// inherited from whoever created it; a rotation writes them into the
	// successor. Empty when it carries none; nil (JSON null) when unknown:
	// a row registered before they were recorded. They are caveat texts,
	// never a secret; CheckTokenCaveats bounds them.
	Caveats []string `json:"caveats"`
}

// Live reports whether the token is neither revoked nor expired at now.
// It knows only the row: whether the token still verifies also depends on
// its editor (a touch, a lock, deactivation), its parents and the lifetime
// policy, which apitoken.StatusOf weighs.
func (t APIToken) Live(now time.Time) bool {
	return t.Revoked.IsZero() && (t.Expires.IsZero() || now.Before(t.Expires))
}

// RevokedBy reports whether the token, a token of editor e, is revoked by
// e's epoch or with one of its parents: it was created at or before the
// epoch (a touch, a lock), or a parent is in e's list of tokens revoked one
// by one. Its own revocation is t.Revoked.
func (t APIToken) RevokedBy(e Editor) (touched, parent bool) {
	st := e.State()
	if !t.Created.Truncate(time.Microsecond).After(st.Epoch) {
		return true, false
	}
	for _, p := range t.Parents {
		if st.TokenRevoked(p) {
			return false, true
		}
	}
	return false, false
}

// Check checks a row to register: its name and description
// (CheckTokenText), and that its id and its parents' ids are upper-case
// UUIDs. Errors wrap ErrInvalidToken.
func (t APIToken) Check() error {
	if err := CheckTokenText(t.Name, t.Description); err != nil {
		return err
	}
	if !caveat.ValidTokenID(t.TokenID) {
		return fmt.Errorf("%w: the token id must be an upper-case UUID", ErrInvalidToken)
	}
	for _, p := range t.Parents {
		if !caveat.ValidTokenID(p) {
			return fmt.Errorf("%w: a parent token id must be an upper-case UUID", ErrInvalidToken)
		}
	}
	return CheckTokenCaveats(t.Caveats)
}

// MaxTokenCaveats and MaxTokenCaveatLen bound APIToken.Caveats: as many
// caveats, and as long, as a token may carry (macaroon.DefaultLimits).
const (
	MaxTokenCaveats   = 32
	MaxTokenCaveatLen = 512
)

// CheckTokenCaveats checks the caveat texts of a row to register: at most
// MaxTokenCaveats, each 1 to MaxTokenCaveatLen bytes of UTF-8 without
// control characters. Errors wrap ErrInvalidToken and repeat no text.
func CheckTokenCaveats(caveats []string) error {
	if len(caveats) > MaxTokenCaveats {
		return fmt.Errorf("%w: a token records at most %d caveats", ErrInvalidToken, MaxTokenCaveats)
	}
	for _, c := range caveats {
		if c == "" || len(c) > MaxTokenCaveatLen || !utf8.ValidString(c) || strings.IndexFunc(c, unicode.IsControl) >= 0 {
			return fmt.Errorf("%w: a recorded caveat must be 1 to %d characters of UTF-8 without control characters", ErrInvalidToken, MaxTokenCaveatLen)
		}
	}
	return nil
}

// CheckTokenText checks a token's name (1 to 64 bytes, one line) and
// description (at most 1024 bytes; newlines allowed): UTF-8 without control
// characters in either (PostgreSQL refuses text that is not UTF-8; SQLite
// would keep it, and every store must take the same rows). Errors wrap
// ErrInvalidToken.
func CheckTokenText(name, description string) error {
	switch {
	case !utf8.ValidString(name) || !utf8.ValidString(description):
		return fmt.Errorf("%w: the name and the description must be UTF-8", ErrInvalidToken)
	case name == "" || len(name) > 64 || strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: the name must be 1 to 64 characters without control characters", ErrInvalidToken)
	case len(description) > 1024 || strings.IndexFunc(description, func(c rune) bool { return c != '\n' && unicode.IsControl(c) }) >= 0:
		return fmt.Errorf("%w: the description must be at most 1024 characters without control characters", ErrInvalidToken)
	}
	return nil
}

// Use is one observed use of a token.
type Use struct {
	TokenID string
	At      time.Time
	// From is the client address; stores keep at most MaxUseFrom bytes.
	From string
	// Attenuation summarises the caveats the presented token carried
	// beyond those it was minted with ("" for none), and AttenuationID
	// fingerprints them; stores keep StoredAttenuation of both.
	Attenuation, AttenuationID string
}

// MaxUseFrom bounds Use.From as stored.
const MaxUseFrom = 128

// StoredUseFrom is what a store keeps of Use.From, which comes from a
// request: valid UTF-8 (bytes that are not dropped), no NUL, at most
// MaxUseFrom bytes cut at a character boundary.
func StoredUseFrom(from string) string {
	from = strings.ReplaceAll(strings.ToValidUTF8(from, ""), "\x00", "")
	if len(from) <= MaxUseFrom {
		return from
	}
	n := MaxUseFrom
	for n > 0 && !utf8.RuneStart(from[n]) {
		n--
	}
	return from[:n]
}

// A Link ties an editor to a login identity: a provider (an OIDC issuer
// URL, or "dev" for the development login) and that provider's stable id of
// the user (its "sub").
type Link struct {
	Provider string    `json:"provider"`
	Subject  string    `json:"subject"`
	EditorID string    `json:"editor_id"`
	Created  time.Time `json:"created"`
}

// maxLinkField bounds provider and subject (OIDC allows subjects of up to
// 255 ASCII characters).
const maxLinkField = 255

// CheckLink checks a login identity: provider and subject of 1 to 255
// bytes of printable ASCII without spaces. Errors wrap ErrInvalidLink.
func CheckLink(provider, subject string) error {
	for _, f := range []struct{ name, v string }{{"provider", provider}, {"subject", subject}} {
		if f.v == "" || len(f.v) > maxLinkField {
			return fmt.Errorf("%w: %s must be 1 to %d bytes", ErrInvalidLink, f.name, maxLinkField)
		}
		for _, r := range f.v {
			if r < 0x21 || r > 0x7e {
				return fmt.Errorf("%w: %s must be printable ASCII without spaces", ErrInvalidLink, f.name)
			}
		}
	}
	return nil
}

// UsernameFrom turns a name a login provider suggests (a preferred_username,
// an e-mail address) into a valid username: the part before any "@", other
// characters than [A-Za-z0-9_.-] replaced by "-", leading punctuation
// dropped, at most 64 characters; "user" when nothing is left.
func UsernameFrom(preferred string) string {
	preferred, _, _ = strings.Cut(preferred, "@")
	var b strings.Builder
	for _, r := range preferred {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case b.Len() == 0:
			continue
		case r == '_' || r == '.' || r == '-':
		default:
			r = '-'
		}
		b.WriteRune(r)
		if b.Len() == 64 {
			break
		}
	}
	if name := b.String(); caveat.ValidUsername(name) {
		return name
	}
	return "user"
}

// LoginUsername is the username Login tries on its i-th attempt (from 1)
// for a new editor: base, then base-2, base-3, … cut to 64 characters.
// Stores give up after MaxLoginAttempts.
func LoginUsername(base string, i int) string {
	if i <= 1 {
		return base
	}
	suffix := fmt.Sprintf("-%d", i)
	return base[:min(len(base), 64-len(suffix))] + suffix
}

// MaxLoginAttempts bounds the usernames Login tries for a new editor.
const MaxLoginAttempts = 100

// Editors is the part of a store that keeps editors and their epochs. Every
// change appends to the change log in the same transaction (ChangeLog).
type Editors interface {
	Source
	// Editor returns one editor's record, or ErrNotFound.
	Editor(ctx context.Context, id string) (Editor, error)
	// EditorByUsername finds an editor by username, case-insensitively, or
	// returns ErrNotFound.
	EditorByUsername(ctx context.Context, username string) (Editor, error)
	// List returns every editor, in order of creation.
	List(ctx context.Context) ([]Editor, error)
	// Create adds an editor; ErrExists when its id or username is taken.
	Create(ctx context.Context, n NewEditor) (Editor, error)
	// Touch sets the epoch to max(now, epoch + 1 µs) with the store's
	// clock, revoking every token created so far; a locked editor stays
	// locked.
	Touch(ctx context.Context, id string) (Editor, error)
	// TouchAll touches every editor and returns how many it touched.
	TouchAll(ctx context.Context) (int64, error)
	// Lock sets the epoch to FarFuture.
	Lock(ctx context.Context, id string) (Editor, error)
	// Unlock sets a locked editor's epoch to now (a Touch otherwise).
	Unlock(ctx context.Context, id string) (Editor, error)
	// SetActive activates or deactivates an editor.
	SetActive(ctx context.Context, id string, active bool) (Editor, error)
}

// Registry is the API-token registry: one row per token minted, never
// deleted, so a token id is never reused.
type Registry interface {
	// RegisterToken adds the row of a token just minted: ErrNameTaken,
	// ErrTooManyTokens, ErrInvalidToken, ErrNotFound for its editor.
	RegisterToken(ctx context.Context, t APIToken) error
	// Token returns one row, or ErrTokenNotFound.
	Token(ctx context.Context, tokenID string) (APIToken, error)
	// Tokens lists an editor's rows (every editor's for ""), oldest first.
	Tokens(ctx context.Context, editorID string) ([]APIToken, error)
	// ExpiringTokens lists the tokens that still verify as far as the
	// store knows and expire within d, soonest first.
	ExpiringTokens(ctx context.Context, d time.Duration) ([]APIToken, error)
	// RevokeToken revokes one token and bumps its editor's version, in one
	// transaction; ErrAlreadyRevoked, ErrTokenNotFound.
	RevokeToken(ctx context.Context, tokenID string) (Editor, APIToken, error)
	// RecordUses writes last-use times (with the address and the
	// attenuation); it changes no editor's state and appends nothing to
	// the change log.
	RecordUses(ctx context.Context, uses []Use) error
	Rotations
}

// Logins ties editors to the identities they log in with.
type Logins interface {
	// LinkedEditor returns the editor linked to the provider's subject, or
	// ErrNotFound.
	LinkedEditor(ctx context.Context, provider, subject string) (Editor, error)
	// Link links an existing editor; ErrLinked, ErrInvalidLink,
	// ErrNotFound.
	Link(ctx context.Context, editorID, provider, subject string) (Link, error)
	// Links lists an editor's identities.
	Links(ctx context.Context, editorID string) ([]Link, error)
	// Login finds the editor linked to the identity or, on its first
	// login, creates and links one in one transaction: concurrent first
	// logins of one identity make one editor.
	Login(ctx context.Context, provider, subject, preferred string) (e Editor, created bool, err error)
	// Unlink removes the editor's identity at provider; ErrNotFound.
	Unlink(ctx context.Context, editorID, provider string) (Link, error)
}

// Store is the whole contract of an authoritative store, as programs open
// it (epoch/sqlite and epoch/postgres implement it; epoch/storetest checks
// that they behave the same). Code that needs less names less: the parts
// above, Source, or an interface of its own.
type Store interface {
	Editors
	Registry
	Logins
	ChangeLog
	Audit
	Notifications
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// SchemaVersion returns the number of schema migrations applied.
	SchemaVersion(ctx context.Context) (int, error)
	// Close releases the store.
	Close() error
}

// Snapshot is a store's whole content, as one store exports it and another
// imports it ("amaretti store copy"): editors with their ids, epochs,
// versions, roles and flags, every registry row, every login link. Root
// keys are not part of it (they move with "amaretti keys export/import").
// Editor.Revoked and Editor.Seq are derived and ignored on import.
type Snapshot struct {
	Editors []Editor
	Tokens  []APIToken
	Links   []Link
	// Audit is the audit trail, oldest first. Import appends it to the
	// target's own (an audit trail is never replaced), under new ids.
	Audit []AuditEvent
	// Sent are the notifications already delivered, so that a notifier
	// on the copy does not announce them again.
	Sent []SentNotification
}

// SentNotification is a delivered notification: one event (an expiry
// threshold, "expired unused", …) of one token.
type SentNotification struct {
	TokenID, Event string
	At             time.Time
}

// ErrNotEmpty means a store to import into already holds editors, tokens
// or links.
var ErrNotEmpty = errors.New("the target store is not empty")
