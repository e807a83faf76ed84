package audit

import (
	"encoding/base64"
	"encoding/json"
)

func base64RawURL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
