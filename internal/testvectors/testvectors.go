// Package testvectors loads the test vectors in the repository's testdata
// directory for the tests of several packages.
package testvectors

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Golden is one token of testdata/golden/tokens.json, minted by pymacaroons
// (testdata/golden/make_golden.py).
type Golden struct {
	Name         string   `json:"name"`
	KeyID        string   `json:"key_id"`
	Secret       string   `json:"secret"`
	Location     string   `json:"location"`
	Identifier   string   `json:"identifier"`
	Caveats      []string `json:"caveats"`
	SignatureHex string   `json:"signature_hex"`
	BinaryHex    string   `json:"binary_hex"`
	Token        string   `json:"token"`
}

// Path returns the path of a file under the repository's testdata.
func Path(elem ...string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(append([]string{filepath.Dir(file), "..", "..", "testdata"}, elem...)...)
}

// LoadGolden returns the golden tokens.
func LoadGolden() ([]Golden, error) {
	data, err := os.ReadFile(Path("golden", "tokens.json"))
	if err != nil {
		return nil, err
	}
	var vs []Golden
	if err := json.Unmarshal(data, &vs); err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("no golden vectors")
	}
	return vs, nil
}
