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
// case and with underscores: only sekisho sets them upstream.
func isForwardedHeader(name string) bool {
	n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	switch n {
	case "forwarded", "x-real-ip", "x-original-url", "x-rewrite-url",
		// Method overrides: the request is decided on its real method, so
		// an upstream must never be told to act as if it were another.
		"x-http-method-override", "x-http-method", "x-method-override":
		return true
	}
	return strings.HasPrefix(n, "x-forwarded-")
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

// stripCookie removes one cookie by name from Cookie headers, keeping the
// others byte for byte.
func stripCookie(h http.Header, name string) {
	vals := h.Values("Cookie")
	if len(vals) == 0 || name == "" {
		return
	}
	var kept []string
	for _, v := range vals {
		parts := strings.Split(v, ";")
		out := parts[:0]
		for _, p := range parts {
			t := strings.TrimSpace(p)
			if t == "" {
				continue
			}
			n, _, _ := strings.Cut(t, "=")
			if n == name {
				continue
			}
			out = append(out, t)
		}
		if len(out) > 0 {
			kept = append(kept, strings.Join(out, "; "))
		}
	}
	h.Del("Cookie")
	if len(kept) > 0 {
		h.Set("Cookie", strings.Join(kept, "; "))
	}
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
