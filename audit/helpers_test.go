package audit

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func base64RawURL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestMain removes the benchmark trail and checks that no test left a
// goroutine behind (writers and sinks stop on Close).
func TestMain(m *testing.M) {
	code := m.Run()
	if benchTrail.dir != "" {
		os.RemoveAll(benchTrail.dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
