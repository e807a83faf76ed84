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
	return n == "forwarded" || strings.HasPrefix(n, "x-forwarded-") || n == "x-real-ip" || n == "x-original-url" || n == "x-rewrite-url"
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
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			return addr
		}
		addr = a.Unmap()
		if !inPrefixes(addr, trusted) {
			return addr
		}
	}
	return addr
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
