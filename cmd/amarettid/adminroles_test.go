package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/amaretti-auth/amaretti/epoch"
)

// TestAdminRoleBound: the admin endpoints change one editor only for a
// caller whose role is above the editor's — an admin touches, locks and
// unlocks editors and bots, not another admin or a superuser; a superuser
// admins too, not another superuser — and a refusal changes nothing.
func TestAdminRoleBound(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bot, _ := f.store.Create(ctx, epoch.NewEditor{Username: "a-bot", Role: epoch.RoleBot})
	peer, _ := f.store.Create(ctx, epoch.NewEditor{Username: "peer", Role: epoch.RoleAdmin})
	super, _ := f.store.Create(ctx, epoch.NewEditor{Username: "super", Role: epoch.RoleSuperuser})
	other, _ := f.store.Create(ctx, epoch.NewEditor{Username: "super2", Role: epoch.RoleSuperuser})
	admin, superTok := f.mint(t, f.admin.ID), f.mint(t, super.ID)
	for _, tc := range []struct {
		name, token string
		target      epoch.Editor
		want        int
	}{
		{"admin → editor", admin, f.alice, 200},
		{"admin → bot", admin, bot, 200},
		{"admin → another admin", admin, peer, 403},
		{"admin → itself", admin, f.admin, 403},
		{"admin → superuser", admin, super, 403},
		{"superuser → admin", superTok, peer, 200},
		{"superuser → another superuser", superTok, other, 403},
	} {
		for _, action := range []string{"touch", "lock", "unlock"} {
			t.Run(tc.name+" "+action, func(t *testing.T) {
				before, _ := f.store.Editor(ctx, tc.target.ID)
				resp, body := f.do(t, call{"POST", "/v1/admin/editors/" + tc.target.ID + "/" + action, bearer(tc.token), ""})
				if resp.StatusCode != tc.want {
					t.Fatalf("%d %s, want %d", resp.StatusCode, body, tc.want)
				}
				after, _ := f.store.Editor(ctx, tc.target.ID)
				if changed := after.Version != before.Version; changed != (tc.want == http.StatusOK) {
					t.Fatalf("version %d → %d after a %d", before.Version, after.Version, resp.StatusCode)
				}
			})
		}
	}
	t.Run("unknown editor", func(t *testing.T) {
		if resp, body := f.do(t, call{"POST", "/v1/admin/editors/nobody-at-all/touch", bearer(admin), ""}); resp.StatusCode != 404 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}
