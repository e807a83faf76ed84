//go:build fuzzseeds

package mtls

// The seed writer runs only when asked for:
//
//	go test -tags fuzzseeds -run TestWriteFuzzSeeds .

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzDeviceID
// (go test -tags fuzzseeds -run TestWriteFuzzSeeds ./authn/mtls).
func TestWriteFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDeviceID")
	write := func(dir string, seeds [][]byte) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, der := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", der)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(dir, fuzzSeeds(t))
	write(filepath.Join("testdata", "fuzz", "FuzzParseUPNs"), upnSeeds(t))
}
