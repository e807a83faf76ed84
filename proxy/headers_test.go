package proxy

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIsSekishoHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Sekisho-User": true, "x-sekisho-user": true, "X-SEKISHO-ASSERTION": true,
		"X_Sekisho_User": true, "x_sekisho-roles": true, "X-Sekisho": true,
		"X-Sekish": false, "X-Forwarded-For": false, "Sekisho-User": false, "X-Seki_ho-User": false,
	} {
		if got := isSekishoHeader(name); got != want {
			t.Errorf("isSekishoHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCleanRequestHeaders(t *testing.T) {
	h := http.Header{}
	h["X-Sekisho-User"] = []string{"admin"}
	h["x-sekisho-roles"] = []string{"admin"}
	h["X_sekisho_device"] = []string{"PC-1"}
	h["X-Forwarded-For"] = []string{"1.2.3.4"}
	h["X_forwarded_host"] = []string{"evil"}
	h["Forwarded"] = []string{"for=1.2.3.4"}
	h["X-Real-Ip"] = []string{"1.2.3.4"}
	h["X-Original-Url"] = []string{"/admin"}
	h["Accept"] = []string{"text/html"}
	h["Cookie"] = []string{"a=1; __Host-sekisho=tok; b=2", "__Host-sekisho=tok2"}
	cleanRequestHeaders(h, "__Host-sekisho")
	want := http.Header{"Accept": {"text/html"}, "Cookie": {"a=1; b=2"}}
	if d := cmp.Diff(want, h); d != "" {
		t.Errorf("headers after cleaning (-want +got):\n%s", d)
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
	a := netip.MustParseAddr
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"untrusted peer ignores XFF", "192.0.2.9", []string{"10.1.2.3"}, "192.0.2.9"},
		{"trusted peer, one hop", "10.0.0.5", []string{"10.1.2.3"}, "10.1.2.3"},
		{"trusted chain read from the right", "10.0.0.5", []string{"6.6.6.6, 10.1.2.3, 10.0.0.7"}, "10.1.2.3"},
		{"spoofed leftmost ignored", "10.0.0.5", []string{"10.0.0.1", "192.0.2.50"}, "192.0.2.50"},
		{"ip:port from a load balancer", "10.0.0.5", []string{"192.0.2.7:51234"}, "192.0.2.7"},
		{"[v6]:port", "10.0.0.5", []string{"[2001:db8::7]:443"}, "2001:db8::7"},
		{"no header", "10.0.0.5", nil, "10.0.0.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clientIP(a(tt.remote), tt.xff, trusted); got != a(tt.want) {
				t.Errorf("clientIP = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClientIPGarbageIsUnknown(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
	// Garbage from a trusted proxy must not fall back to the proxy's own
	// address (and zone): the client is unknown.
	if got := clientIP(netip.MustParseAddr("10.0.0.5"), []string{"1.1.1.1, junk"}, trusted); got.IsValid() {
		t.Fatalf("clientIP with garbage = %v, want no address", got)
	}
}

func TestRequestPath(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"/a/b?x=1", "/a/b", true},
		{"http://zaimu.example/a?b", "/a", true},
		{"https://h", "/", true},
		{"http://h?x", "/", true},
		{"/a#frag", "", false},
		{"*", "", false},
		{"a/b", "", false},
	}
	for _, tt := range tests {
		got, err := requestPath(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("requestPath(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
