package audit

import (
	"net/url"
	"strings"
)

// Redacted replaces the value of a redacted query parameter.
const Redacted = "REDACTED"

func redactSet(names []string) map[string]bool {
	if len(names) == 0 {
		return nil
	}
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = true
	}
	return m
}

// redactPath replaces the values of query parameters named in names (case
// insensitive, compared after percent-decoding the name) with [Redacted].
// The rest of the path is kept byte for byte.
func redactPath(p string, names map[string]bool) string {
	if len(names) == 0 {
		return p
	}
	i := strings.IndexByte(p, '?')
	if i < 0 {
		return p
	}
	parts := strings.Split(p[i+1:], "&")
	changed := false
	for j, part := range parts {
		k, v, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if names[strings.ToLower(name)] && (v != Redacted || !strings.Contains(part, "=")) {
			parts[j] = k + "=" + Redacted
			changed = true
		}
	}
	if !changed {
		return p
	}
	return p[:i+1] + strings.Join(parts, "&")
}
