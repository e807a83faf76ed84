package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The header filters run on every request, so they compare in place. These
// tests hold them to the straightforward versions they replaced, on the
// header names and Cookie values a client can send.

// refIsForwardedHeader is the allocating reference: lower-case the name,
// read "_" as "-", compare.
func refIsForwardedHeader(name string) bool {
	n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	switch n {
	case "forwarded", "x-real-ip", "x-original-url", "x-rewrite-url",
		"x-http-method-override", "x-http-method", "x-method-override":
		return true
	}
	return strings.HasPrefix(n, "x-forwarded-")
}

// refStripCookie splits every Cookie value on ";", drops the named cookie
// and empty parts, and joins what is left with "; " into one header.
func refStripCookie(h http.Header, name string) {
	vals := h.Values("Cookie")
	if len(vals) == 0 || name == "" {
		return
	}
	var kept []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ";") {
			t := strings.TrimSpace(p)
			if t == "" {
				continue
			}
			if n, _, _ := strings.Cut(t, "="); n == name {
				continue
			}
			kept = append(kept, t)
		}
	}
	h.Del("Cookie")
	if len(kept) > 0 {
		h.Set("Cookie", strings.Join(kept, "; "))
	}
}

// validHeaderName reports whether s is an RFC 9110 token: net/http refuses
// a request whose header names are not, so no other name reaches the filter.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func TestIsForwardedHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Forwarded-For": true, "x_forwarded_host": true, "X-FORWARDED-PROTO": true, "X-Forwarded-": true,
		"Forwarded": true, "FORWARDED": true, "X-Real-Ip": true, "x_real_ip": true, "X-Original-Url": true,
		"X-Rewrite-Url": true, "X-Http-Method-Override": true, "X-Http-Method": true, "X-Method-Override": true,
		"X-Forwarded": false, "Forwarded-For": false, "X-Real-Ipx": false, "X-Http-Methods": false,
		"Accept": false, "Cookie": false, "": false, "X-Forwardee-For": false,
	} {
		if got := isForwardedHeader(name); got != want {
			t.Errorf("isForwardedHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func FuzzIsForwardedHeader(f *testing.F) {
	for _, s := range []string{"X-Forwarded-For", "x_forwarded_host", "Forwarded", "X-Real-Ip", "X-Http-Method",
		"X-Http-Method-Override", "X-Method-Override", "X-Original-Url", "X-Rewrite-Url", "Accept", "X-Forwarded", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !validHeaderName(name) {
			return
		}
		if got, want := isForwardedHeader(name), refIsForwardedHeader(name); got != want {
			t.Fatalf("isForwardedHeader(%q) = %v, reference %v", name, got, want)
		}
	})
}

func TestStripCookie(t *testing.T) {
	const name = "__Host-sekisho"
	tests := []struct {
		in   []string
		want []string // nil: no Cookie header left
	}{
		{[]string{"__Host-sekisho=tok"}, nil},
		{[]string{"a=1; b=2"}, []string{"a=1; b=2"}},
		{[]string{"a=1;b=2"}, []string{"a=1; b=2"}},
		{[]string{" a=1; b=2 "}, []string{"a=1; b=2"}},
		{[]string{"a=1;; b=2;"}, []string{"a=1; b=2"}},
		{[]string{"a=1; __Host-sekisho=tok; b=2", "__Host-sekisho=tok2"}, []string{"a=1; b=2"}},
		{[]string{"a=1", "b=2"}, []string{"a=1; b=2"}},
		{[]string{"__Host-sekisho"}, nil},
		{[]string{"__Host-sekishox=1"}, []string{"__Host-sekishox=1"}},
		{[]string{";"}, nil},
	}
	for _, tt := range tests {
		h := http.Header{"Cookie": append([]string(nil), tt.in...)}
		stripCookie(h, name)
		if d := cmp.Diff(tt.want, h["Cookie"]); d != "" {
			t.Errorf("stripCookie(%q) (-want +got):\n%s", tt.in, d)
		}
	}
}

func FuzzStripCookie(f *testing.F) {
	for _, s := range []string{"a=1; b=2", "a=1;b=2", "__Host-sekisho=tok", " a=1 ;; __Host-sekisho=x; b", ";", "", "a=1; "} {
		f.Add(s, "c=3", "__Host-sekisho")
	}
	f.Fuzz(func(t *testing.T, v1, v2, name string) {
		for _, in := range [][]string{{v1}, {v1, v2}} {
			got := http.Header{"Cookie": append([]string(nil), in...)}
			want := http.Header{"Cookie": append([]string(nil), in...)}
			stripCookie(got, name)
			refStripCookie(want, name)
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("stripCookie(%q, %q) differs from the reference (-ref +got):\n%s", in, name, d)
			}
		}
	})
}
