package authn

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestCheckRedirect(t *testing.T) {
	env := newEnv(t)
	tests := []struct {
		rd   string
		want string // "" = refused
	}{
		// Accepted: configured route hosts, paths on this host.
		{"https://zaimu.example.lg.jp/ledger?y=2026", "https://zaimu.example.lg.jp/ledger?y=2026"},
		{"https://jinji.example.lg.jp/", "https://jinji.example.lg.jp/"},
		{"https://ZAIMU.example.lg.jp/a", "https://zaimu.example.lg.jp/a"},
		{"HTTPS://zaimu.example.lg.jp/a", "https://zaimu.example.lg.jp/a"},
		{"https://zaimu.example.lg.jp:8443/a", "https://zaimu.example.lg.jp:8443/a"},
		{"https://zaimu.example.lg.jp/a#frag", "https://zaimu.example.lg.jp/a#frag"},
		{"/ledger?y=1", "/ledger?y=1"},
		{"/", "/"},
		{"/a/b%20c", ""}, // encoded whitespace is refused anywhere, even where harmless

		// Refused: other hosts and look-alikes.
		{"https://evil.test/", ""},
		{"https://zaimu.example.lg.jp.evil.test/", ""},
		{"https://evil.test/?https://zaimu.example.lg.jp/", ""},
		{"https://example.lg.jp/", ""},
		{"https://xzaimu.example.lg.jp/", ""},
		{"https://zaimu.example.lg.jp./", ""},
		{"https://zaimu.example.lg.jp:9999/", ""},
		{"https://zaimu.example.lg.jp:/", ""},
		// Scheme-relative and backslash tricks.
		{"//evil.test/", ""},
		{"///evil.test/", ""},
		{"/\\evil.test/", ""},
		{"\\\\evil.test/", ""},
		{"\\/evil.test/", ""},
		{"/%5Cevil.test/", ""},
		{"https:\\\\evil.test", ""},
		{"https:/evil.test", ""},
		{"https:evil.test", ""},
		{"https:/zaimu.example.lg.jp/", ""},
		// Whitespace and control characters, raw and encoded.
		{"/\t/evil.test/", ""},
		{"/%09/evil.test/", ""},
		{"/%0a/evil.test/", ""},
		{"/%0d%0a/evil.test/", ""},
		{"/%2509/evil.test/", ""},
		{" https://evil.test/", ""},
		{"%20//evil.test/", ""},
		{"/%E3%80%80/evil.test", ""}, // U+3000 ideographic space
		{"/%00", ""},
		// User info.
		{"https://zaimu.example.lg.jp@evil.test/", ""},
		{"https://user:pw@zaimu.example.lg.jp/", ""},
		{"https://evil.test%40zaimu.example.lg.jp/", ""},
		// Other schemes.
		{"javascript:alert(1)", ""},
		{"JaVaScRiPt:alert(1)", ""},
		{"javascript://zaimu.example.lg.jp/%0aalert(1)", ""},
		{"data:text/html,<script>alert(1)</script>", ""},
		{"vbscript:msgbox", ""},
		{"ftp://zaimu.example.lg.jp/", ""},
		// Plain http only when the request itself is http.
		{"http://zaimu.example.lg.jp/", ""},
		// Not a URL at all.
		{"", ""},
		{"ledger", ""},
		{"%", ""},
		{strings.Repeat("/a", 3000), ""},
	}
	for _, tt := range tests {
		got, ok := env.svc.checkRedirect("https", testHost, tt.rd)
		if !ok {
			got = ""
		}
		if got != tt.want {
			t.Errorf("checkRedirect(%q) = %q, want %q", tt.rd, got, tt.want)
		}
	}

	// The login page falls back to the account page for a refused rd.
	c := env.client()
	for _, rd := range []string{"https://evil.test/", "//evil.test", "/%09/evil.test", "javascript:alert(1)"} {
		page := env.get(c, testOrigin+PathLogin+"?rd="+url.QueryEscape(rd), "text/html")
		if page.status != http.StatusOK || !strings.Contains(string(page.body), `data-rd="`+PathAccount+`"`) {
			t.Errorf("login page for rd %q: %d, body lacks the fallback", rd, page.status)
		}
		if strings.Contains(html.UnescapeString(string(page.body)), "evil.test") {
			t.Errorf("login page for rd %q echoes the refused target", rd)
		}
	}
}

func TestCheckRedirectPlainHTTP(t *testing.T) {
	env := newEnv(t)
	if got, ok := env.svc.checkRedirect("http", testHost, "http://zaimu.example.lg.jp/a"); !ok || got != "http://zaimu.example.lg.jp/a" {
		t.Errorf("http target from an http request: %q %v", got, ok)
	}
	// The request's own port is accepted.
	if got, ok := env.svc.checkRedirect("http", "zaimu.example.lg.jp:18080", "http://zaimu.example.lg.jp:18080/a"); !ok || got != "http://zaimu.example.lg.jp:18080/a" {
		t.Errorf("same port: %q %v", got, ok)
	}
}

// FuzzCheckRedirect: whatever rd is, an accepted target is a path on this
// host or an https/http URL on a configured route host, with no user info.
func FuzzCheckRedirect(f *testing.F) {
	for _, s := range []string{"/a", "https://zaimu.example.lg.jp/", "//evil.test", "/\\evil", "https://a@b/", "/%09/x"} {
		f.Add(s)
	}
	env := newEnv(f)
	f.Fuzz(func(t *testing.T, rd string) {
		got, ok := env.svc.checkRedirect("https", testHost, rd)
		if !ok {
			return
		}
		if strings.HasPrefix(got, "/") {
			if strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n ") {
				t.Fatalf("accepted path %q from %q", got, rd)
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil || u.User != nil || !env.svc.routes[u.Hostname()] || (u.Scheme != "https" && u.Scheme != "http") {
			t.Fatalf("accepted %q from %q", got, rd)
		}
	})
}
