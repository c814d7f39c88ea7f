package macaroon

import "fmt"

func sprint(v any) string { return fmt.Sprintf("%v %s", v, v) }
