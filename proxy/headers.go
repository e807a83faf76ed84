package proxy

import (
	"net/http"
	"net/netip"
	"strings"
)

// isSekishoHeader reports whether name is in sekisho's namespace, in any
// letter case and with "_" standing for "-": such headers from a client are
// always dropped, since upstreams trust them.
func isSekishoHeader(name string) bool {
	const p = "x-sekisho"
	if len(name) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == '_' {
			c = '-'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

// isForwardedHeader matches the X-Forwarded-* family and Forwarded, in any
// case and with underscores: only sekisho sets them upstream. It runs on
// every header of every request, so it compares in place instead of
// building a lower-cased copy of the name.
func isForwardedHeader(name string) bool {
	switch {
	case headerPrefixFold(name, "x-forwarded-"):
		return true
	case len(name) < len("forwarded") || len(name) > len("x-http-method-override"):
		return false
	}
	for _, n := range forwardedNames {
		if len(n) == len(name) && headerPrefixFold(name, n) {
			return true
		}
	}
	return false
}

// forwardedNames are the single headers isForwardedHeader matches, in
// lower case with "-".
var forwardedNames = [...]string{
	"forwarded", "x-real-ip", "x-original-url", "x-rewrite-url",
	// Method overrides: the request is decided on its real method, so
	// an upstream must never be told to act as if it were another.
	"x-http-method-override", "x-http-method", "x-method-override",
}

// headerPrefixFold reports whether name starts with prefix (lower case,
// "-" for separators), ignoring ASCII case and reading "_" as "-".
func headerPrefixFold(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// cleanRequestHeaders removes what a client must not be able to send
// upstream: anything in the X-Sekisho namespace, forwarding headers, and
// sekisho's own cookie. Hop-by-hop headers, including any named in
// Connection, are removed by httputil.ReverseProxy before its Rewrite hook
// runs (it restores Connection/Upgrade itself for WebSocket), and sekisho's
// own headers are added after that, so "Connection: X-Sekisho-User" cannot
// strip them.
func cleanRequestHeaders(h http.Header, cookieName string) {
	for k := range h {
		if isSekishoHeader(k) || isForwardedHeader(k) {
			delete(h, k)
		}
	}
	stripCookie(h, cookieName)
}

// stripCookie removes one cookie by name from Cookie headers. The others
// are kept in order, each trimmed of surrounding spaces, joined by "; " in
// one Cookie header. A single header already in that form without the
// cookie is left as it is, without allocating.
func stripCookie(h http.Header, name string) {
	vals := h["Cookie"]
	if len(vals) == 0 || name == "" {
		return
	}
	if len(vals) == 1 && cookieUnchanged(vals[0], name) {
		return
	}
	var b strings.Builder
	for _, v := range vals {
		for v != "" {
			var p string
			p, v, _ = strings.Cut(v, ";")
			t := strings.TrimSpace(p)
			if t == "" {
				continue
			}
			if n, _, _ := strings.Cut(t, "="); n == name {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(t)
		}
	}
	if b.Len() == 0 {
		delete(h, "Cookie")
		return
	}
	// vals is h's own slice (a clone of the client's header in the
	// forwarder), so it can carry the result.
	vals[0] = b.String()
	h["Cookie"] = vals[:1:1]
}

// cookieUnchanged reports whether stripping name from the single Cookie
// value v would give v back: no cookie called name, and v non-empty,
// already trimmed and joined with "; ".
func cookieUnchanged(v, name string) bool {
	pos := 0 // how much of v the rebuilt value has matched
	for rest := v; rest != ""; {
		var p string
		p, rest, _ = strings.Cut(rest, ";")
		t := strings.TrimSpace(p)
		if t == "" {
			continue
		}
		if n, _, _ := strings.Cut(t, "="); n == name {
			return false
		}
		if pos > 0 {
			if !strings.HasPrefix(v[pos:], "; ") {
				return false
			}
			pos += 2
		}
		if !strings.HasPrefix(v[pos:], t) {
			return false
		}
		pos += len(t)
	}
	return pos > 0 && pos == len(v)
}

// clientIP is the address a request comes from. X-Forwarded-For is
// believed only when the peer is a trusted proxy, and then read from the
// right, skipping trusted proxies, so a client cannot choose its address.
func clientIP(remote netip.Addr, xff []string, trusted []netip.Prefix) netip.Addr {
	if !inPrefixes(remote, trusted) || len(xff) == 0 {
		return remote
	}
	var hops []string
	for _, v := range xff {
		for _, f := range strings.Split(v, ",") {
			hops = append(hops, strings.TrimSpace(f))
		}
	}
	addr := remote
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			// Something a trusted proxy passed on that is no address: the
			// client is unknown. Never fall back to the proxy's own address,
			// which would put the client in the proxy's zone.
			return netip.Addr{}
		}
		addr = a
		if !inPrefixes(addr, trusted) {
			return addr
		}
	}
	return addr
}

// parseHop reads one X-Forwarded-For entry: an address, "ip:port" or
// "[v6]:port" (some load balancers append the port).
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
