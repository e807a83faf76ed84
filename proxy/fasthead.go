package proxy

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// parseFastHead builds the request http.ReadRequest would build from head,
// for the plainest heads only, with a handful of allocations instead of
// one or more per header line; for anything else it reports false and the
// fast path calls http.ReadRequest as before. head has passed headOK (CRLF
// lines only, no other control character than HTAB, one Host line).
//
// It takes: the request line "GET <target> HTTP/1.1" with a target
// starting with "/" (parsed by url.ParseRequestURI, as ReadRequest does);
// header lines "Name: value" whose name is a token, none starting with
// whitespace (a folded continuation), no name twice, and none of
// Content-Length, Transfer-Encoding, Upgrade, Expect, HTTP2-Settings or a
// Connection asking to close (fastRequest refuses those anyway). It does
// what ReadRequest and textproto do with such a head: names canonicalised
// (never in head itself: the bytes may be handed to net/http), values
// without the whitespace around them, the Host line taken out of Header
// into Host, Pragma: no-cache without Cache-Control giving Cache-Control:
// no-cache, no body. FuzzFastHead checks that every head it takes gives a
// request equal to ReadRequest's.
func parseFastHead(head []byte) (*http.Request, bool) {
	s := string(head) // every string of the request is a part of this one
	const line0 = "GET "
	if len(s) < len(line0) || s[:len(line0)] != line0 {
		return nil, false
	}
	eol := bytes.Index(head, crlf)
	sp := bytes.IndexByte(head[len(line0):eol], ' ')
	if sp <= 0 {
		return nil, false
	}
	target := s[len(line0) : len(line0)+sp]
	if target[0] != '/' || s[len(line0)+sp:eol] != " HTTP/1.1" {
		return nil, false
	}
	n := bytes.Count(head, crlf) - 2 // header lines
	if n < 1 || n > 64 {
		return nil, false
	}
	// The request, its URL and the values of up to 8 header lines in one
	// allocation.
	a := new(fastAlloc)
	if !simpleTarget(target, &a.url) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return nil, false
		}
		a.url = *u
	}
	h := make(http.Header, n)
	vals := a.vals[:]
	if n > len(a.vals) {
		vals = make([]string, n)
	}
	var key [64]byte
	for i, pos := 0, eol+2; i < n; i++ {
		end := pos + bytes.Index(head[pos:], crlf)
		line := head[pos:end]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || colon > len(key) {
			return nil, false
		}
		k, ok := canonicalKey(line[:colon], &key)
		if !ok {
			return nil, false
		}
		v := trimOWS(s[pos+colon+1 : end])
		if _, dup := h[k]; dup {
			return nil, false
		}
		switch k {
		case "Content-Length", "Transfer-Encoding", "Upgrade", "Expect", "Http2-Settings":
			return nil, false
		case "Connection":
			if httpguts.HeaderValuesContainsToken([]string{v}, "close") {
				return nil, false
			}
		}
		vals[i] = v
		h[k] = vals[i : i+1 : i+1]
		pos = end + 2
	}
	host := h["Host"]
	if len(host) != 1 {
		return nil, false
	}
	delete(h, "Host") // as ReadRequest does
	if p := h["Pragma"]; len(p) > 0 && p[0] == "no-cache" && h["Cache-Control"] == nil {
		h["Cache-Control"] = []string{"no-cache"}
	}
	a.req = http.Request{
		Method: http.MethodGet, URL: &a.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: http.NoBody, Host: host[0], RequestURI: target,
	}
	return &a.req, true
}

// fastAlloc is what parseFastHead allocates for one request.
type fastAlloc struct {
	req  http.Request
	url  url.URL
	vals [8]string
}

// simpleTarget sets u to what url.ParseRequestURI gives for a target
// whose path has only letters, digits and "-._~/" (nothing it unescapes
// or keeps a raw form of), followed by nothing or a query ("?" and any
// bytes, kept raw): Path and RawQuery. It reports false for any other
// target. FuzzFastHead holds the result to ReadRequest's URL.
func simpleTarget(target string, u *url.URL) bool {
	path, query, hasQuery := strings.Cut(target, "?")
	if path == "" || path[0] != '/' {
		return false
	}
	for i := 0; i < len(path); i++ {
		if !pathChars[path[i]] {
			return false
		}
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

var pathChars = func() (t [256]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", byte(c)) >= 0
	}
	return t
}()

var crlf = []byte("\r\n")

// trimOWS removes the spaces and tabs around a header value (textproto
// trims the line's end and the value's start).
func trimOWS(v string) string {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// canonicalKey returns the canonical form of a header name that is a
// token (textproto.CanonicalMIMEHeaderKey's), without allocating for the
// common names; ok is false when name is not a token.
func canonicalKey(name []byte, buf *[64]byte) (string, bool) {
	upper := true
	for i, c := range name {
		if !httpguts.IsTokenRune(rune(c)) {
			return "", false
		}
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
		upper = c == '-'
	}
	k := buf[:len(name)]
	if v, ok := commonKeys[string(k)]; ok {
		return v, true
	}
	return string(k), true
}

// commonKeys are the header names browsers and API clients send most.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control", "Connection",
		"Cookie", "Dnt", "Host", "If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "Origin",
		"Pragma", "Priority", "Range", "Referer", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform",
		"Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Te", "Upgrade-Insecure-Requests",
		"User-Agent", "Via", "X-Requested-With",
	} {
		m[k] = k
	}
	return m
}()
