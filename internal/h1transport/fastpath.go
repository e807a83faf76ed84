package h1transport

import (
	"net/http"
	"strings"
)

// fastPath reports whether req is one the Transport serves itself; see
// the package documentation for the conditions.
func fastPath(req *http.Request) bool {
	u := req.URL
	if u == nil || u.Host == "" || req.Header == nil {
		return false
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	if req.Method == http.MethodConnect || !validToken(req.Method) && req.Method != "" {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody || req.ContentLength != 0 || len(req.TransferEncoding) != 0 {
		return false
	}
	for k, vv := range req.Header {
		// Keys are compared without regard to case: a caller may have put
		// a non-canonical key in the map, and Request.Write sends it as is.
		switch len(k) {
		case len("Upgrade"):
			if strings.EqualFold(k, "Upgrade") {
				return false
			}
		case len("Expect"):
			if strings.EqualFold(k, "Expect") {
				return false
			}
		case len("Connection"):
			if strings.EqualFold(k, "Connection") {
				for _, v := range vv {
					if hasToken(v, "upgrade") {
						return false
					}
				}
			}
		}
		// The same checks net/http makes before it sends: the fallback
		// then returns net/http's own error for such a request.
		if !validToken(k) {
			return false
		}
		for _, v := range vv {
			if !validFieldValue(v) {
				return false
			}
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token,
// compared without regard to case.
func hasToken(v, token string) bool {
	for v != "" {
		var part string
		part, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}

// validToken reports whether s is a non-empty RFC 9110 token (a method or
// a field name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return true
}

// validFieldValue reports whether v holds no control character other than
// horizontal tab (net/http's httpguts.ValidHeaderFieldValue).
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
