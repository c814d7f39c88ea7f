package apitoken

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// Attenuation summarises the caveats a holder added to token beyond those
// it was minted with: a readable summary ("GET /api/x", "GET,HEAD
// /reports @billing rights=read until 2026-07-01T00:00:00Z") and a short
// fingerprint (12 hex digits of SHA-256 over the added caveats), so that
// the registry can show how its tokens are really used. A token minted
// with a kind ends with its creation time (macaroon.Minter), so what
// follows that caveat was appended by a holder. Both are "" for a token
// used as minted, one without a kind, or text that does not parse. The
// summary holds caveat values only (never a signature or a key), at most
// epoch.MaxAttenuation bytes of printable text.
func Attenuation(token string) (summary, fingerprint string) {
	tok, err := macaroon.Parse(token, macaroon.Limits{})
	if err != nil {
		return "", ""
	}
	cavs := tok.Caveats()
	kind, created := false, -1
	for i, c := range cavs {
		switch {
		case strings.HasPrefix(c, caveat.NameKind+" = "):
			kind = true
		case strings.HasPrefix(c, caveat.NameTime+" > ") && created < 0:
			created = i
		}
	}
	if !kind || created < 0 || created == len(cavs)-1 {
		return "", ""
	}
	added := cavs[created+1:]
	h := sha256.New()
	for _, c := range added {
		h.Write([]byte(c))
		h.Write([]byte{'\n'})
	}
	fingerprint = hex.EncodeToString(h.Sum(nil))[:12]
	checker, err := caveat.NewChecker()
	if err != nil {
		return "", fingerprint
	}
	var methods, paths, rest []string
	for _, text := range added {
		c, err := checker.Parse(text)
		if err != nil {
			// An application's own caveat: named, not quoted.
			name, _, _ := strings.Cut(text, " ")
			rest = append(rest, "caveat "+name)
			continue
		}
		switch c := c.(type) {
		case caveat.Methods:
			methods = append(methods, strings.Join(c, ","))
		case caveat.PathPrefix:
			paths = append(paths, string(c))
		case caveat.Endpoint:
			rest = append(rest, "@"+string(c))
		case caveat.Rights:
			rest = append(rest, "rights="+strings.Join(c, ","))
		case caveat.Expiry:
			rest = append(rest, "until "+c.Time.UTC().Format("2006-01-02T15:04:05Z"))
		case caveat.ParentToken:
			rest = append(rest, "parent "+string(c))
		default:
			name, _, _ := strings.Cut(text, " ")
			rest = append(rest, "caveat "+name)
		}
	}
	parts := append(append(methods, paths...), rest...)
	return epoch.StoredAttenuation(strings.Join(parts, " "), epoch.MaxAttenuation), fingerprint
}
