package caveat_test

import (
	"fmt"
	"time"

	"github.com/amaretti-auth/amaretti/caveat"
)

func ExampleChecker_Parse() {
	c, _ := caveat.NewChecker()
	cav, err := c.Parse("time < 2027-01-01T00:00:00Z")
	fmt.Printf("%T %v\n", cav, err)
	_, err = c.Parse("time <  2027-01-01T00:00:00Z")
	fmt.Println(err)
	_, err = c.Parse("color = red")
	fmt.Println(err)
	// Output:
	// caveat.Expiry <nil>
	// malformed caveat: more than one separator or trailing data
	// unknown caveat "color"
}

func ExampleChecker_Check() {
	c, _ := caveat.NewChecker()
	claims, _ := c.Claims([][]byte{
		[]byte("editor_id = aaaaaaaaaaaaaaaaaaaaaaaaaa"),
		[]byte("time > 2026-11-22T10:00:00.000000Z"),
		[]byte("time < 2026-11-22T11:00:00Z"),
		[]byte("method = GET"),
	})
	now := time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	fmt.Println(c.Check(claims, &caveat.Request{Time: now, Method: "GET"}))
	fmt.Println(c.Check(claims, &caveat.Request{Time: now, Method: "DELETE"}))
	// Output:
	// <nil>
	// caveat prohibits request: method = GET: method DELETE not allowed
}
