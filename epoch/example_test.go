package epoch_test

import (
	"fmt"
	"time"

	"github.com/amaretti-auth/amaretti/epoch"
)

func ExampleState_Admit() {
	touched := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	st := epoch.State{Epoch: touched, Role: epoch.RoleEditor, Active: true}
	fmt.Println(st.Admit(touched.Add(-time.Hour)))       // minted before the touch
	fmt.Println(st.Admit(touched))                       // in the same instant
	fmt.Println(st.Admit(touched.Add(500)))              // 500 ns later: same microsecond
	fmt.Println(st.Admit(touched.Add(time.Microsecond))) // after
	st.Epoch = epoch.FarFuture
	fmt.Println(st.Admit(time.Now()))
	// Output:
	// token revoked
	// token revoked
	// token revoked
	// <nil>
	// token revoked: editor locked
}
