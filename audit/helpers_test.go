package audit

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"
)

func base64RawURL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func TestMain(m *testing.M) {
	code := m.Run()
	if benchTrail.dir != "" {
		os.RemoveAll(benchTrail.dir)
	}
	os.Exit(code)
}
