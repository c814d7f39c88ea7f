package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/macaroon"
)

// TestTokenLimitAnswer: an editor at the live-token limit gets a clear 409
// naming the remedy, never a 503; revoking one frees a place.
func TestTokenLimitAnswer(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	now := time.Now().UTC()
	var ids []string
	for i := range epoch.DefaultMaxLiveTokens {
		id, err := macaroon.NewTokenID(nil)
		if err != nil {
			t.Fatal(err)
		}
		row := epoch.APIToken{TokenID: id, EditorID: f.alice.ID, Name: fmt.Sprintf("t%d", i), Created: now, Creator: "cli", Expires: now.Add(time.Hour)}
		if err := f.store.RegisterToken(ctx, row); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	session := f.mint(t, f.alice.ID)
	create := func() (int, map[string]string) {
		resp, body := f.do(t, call{"POST", "/v1/tokens", with(bearer(session), "Content-Type", "application/json"), `{"name":"one-more","expires_in":"1h"}`})
		var out map[string]string
		json.Unmarshal([]byte(body), &out)
		return resp.StatusCode, out
	}
	status, out := create()
	if status != 409 || out["error"] != "too_many_tokens" || !strings.Contains(out["error_description"], "revoke one first") {
		t.Fatalf("at the limit: %d %v, want 409 too_many_tokens naming the remedy", status, out)
	}
	if _, _, err := f.store.RevokeToken(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if status, out := create(); status != 201 {
		t.Fatalf("after revoking one: %d %v, want 201", status, out)
	}
}
