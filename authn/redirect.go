package authn

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// fallbackRedirect is where a login goes when rd is missing or refused: a
// page of sekisho itself, on the host the user is already on.
const fallbackRedirect = PathAccount

const maxRedirectLen = 4096

// safeRedirect returns rd if it is a URL sekisho may send the browser to
// after login or logout, and the account page otherwise. See checkRedirect.
func (s *Service) safeRedirect(r *http.Request, rd string) string {
	if u, ok := s.checkRedirect(requestScheme(r), r.Host, rd); ok {
		return u
	}
	return fallbackRedirect
}

// checkRedirect accepts two shapes and nothing else, so that the login page
// is never an open redirect:
//
//   - an absolute http(s) URL whose host is a configured route host, without
//     user info, with a port that is absent, the request's own or one
//     sekisho listens on; plain http only when the request itself is http;
//   - a path on the current host: "/" followed by anything but "/" or "\".
//
// Control characters, whitespace and backslashes are refused anywhere, also
// when percent-encoded (browsers drop tabs and newlines and read "\" as
// "/", which turns "/\t/evil" into "//evil").
func (s *Service) checkRedirect(reqScheme, reqHost, rd string) (string, bool) {
	if rd == "" || len(rd) > maxRedirectLen {
		return "", false
	}
	if !cleanRedirectText(rd) {
		return "", false
	}
	u, err := url.Parse(rd)
	if err != nil || u.User != nil || u.Opaque != "" {
		return "", false
	}
	if u.Scheme == "" && u.Host == "" {
		// A path on this host.
		if !strings.HasPrefix(rd, "/") || strings.HasPrefix(rd, "//") || strings.HasPrefix(rd, "/\\") {
			return "", false
		}
		return u.RequestURI() + fragment(u), true
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme == "https":
	case scheme == "http" && reqScheme == "http":
	default:
		return "", false
	}
	if !strings.HasPrefix(strings.ToLower(rd), scheme+"://") {
		return "", false // "https:/host" and other half-absolute forms
	}
	host := strings.ToLower(u.Hostname())
	if host == "" || !s.routes[host] {
		return "", false
	}
	if strings.HasSuffix(u.Host, ":") {
		return "", false // an empty port
	}
	if port := u.Port(); port != "" && !s.redirectPortOK(reqHost, port) {
		return "", false
	}
	u.Scheme = scheme
	u.Host = strings.ToLower(u.Host)
	return u.String(), true
}

func fragment(u *url.URL) string {
	if u.Fragment == "" {
		return ""
	}
	return "#" + u.EscapedFragment()
}

// redirectPortOK reports whether port is the request's own port or one of
// the ports sekisho serves.
func (s *Service) redirectPortOK(reqHost, port string) bool {
	if _, p, err := net.SplitHostPort(reqHost); err == nil && p == port {
		return true
	}
	for _, pat := range s.origins.patterns {
		if pat.ports[port] {
			return true
		}
	}
	return false
}

// cleanRedirectText refuses control characters, spaces and backslashes in
// rd and in up to three rounds of percent-decoding of it.
func cleanRedirectText(rd string) bool {
	cur := rd
	for range 4 {
		for i := 0; i < len(cur); i++ {
			c := cur[i]
			if c <= 0x20 || c == 0x7f || c == '\\' {
				return false
			}
		}
		// Non-ASCII spaces (U+00A0, U+2028…) are refused too.
		for _, r := range cur {
			if r == '\u00a0' || r == '\u1680' || (r >= '\u2000' && r <= '\u200b') ||
				r == '\u2028' || r == '\u2029' || r == '\u202f' || r == '\u205f' || r == '\u3000' || r == '\ufeff' {
				return false
			}
		}
		next, err := url.PathUnescape(cur)
		if err != nil {
			return false
		}
		if next == cur {
			return true
		}
		cur = next
	}
	return false
}
