package epoch

import "testing"

// TestRoleOutranks: editor < bot < admin < superuser, strictly; an unknown
// role outranks nothing and is outranked by nothing (fail closed).
func TestRoleOutranks(t *testing.T) {
	for _, tc := range []struct {
		r, o Role
		want bool
	}{
		{RoleAdmin, RoleEditor, true},
		{RoleAdmin, RoleBot, true},
		{RoleAdmin, RoleAdmin, false},
		{RoleAdmin, RoleSuperuser, false},
		{RoleSuperuser, RoleAdmin, true},
		{RoleSuperuser, RoleSuperuser, false},
		{RoleBot, RoleEditor, true},
		{RoleEditor, RoleEditor, false},
		{RoleEditor, RoleBot, false},
		{RoleSuperuser, "", false},
		{RoleSuperuser, "root", false},
		{"root", RoleEditor, false},
	} {
		t.Run(string(tc.r)+">"+string(tc.o), func(t *testing.T) {
			if got := tc.r.Outranks(tc.o); got != tc.want {
				t.Fatalf("%q.Outranks(%q) = %v", tc.r, tc.o, got)
			}
		})
	}
}
