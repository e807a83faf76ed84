package authn

import (
	"github.com/sekisho/sekisho/authn/authntest"

	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/config"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
var passkeyIDField = regexp.MustCompile(`name="id" value="([^"]+)"`)

// postForm sends a same-origin form POST as the account page does.
func (e *testEnv) postForm(c *http.Client, path string, form url.Values) response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, testOrigin+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Origin", testOrigin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return e.do(c, req)
}

func (e *testEnv) accountPage(c *http.Client) (body, csrf string, ids []string) {
	e.t.Helper()
	res := e.get(c, testOrigin+PathAccount, "text/html")
	if res.status != http.StatusOK {
		e.t.Fatalf("account page: %d %s", res.status, res.body)
	}
	body = string(res.body)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		e.t.Fatalf("account page has no CSRF token")
	}
	for _, id := range passkeyIDField.FindAllStringSubmatch(body, -1) {
		if len(ids) == 0 || ids[len(ids)-1] != id[1] {
			ids = append(ids, id[1])
		}
	}
	return body, m[1], ids
}

func TestAccountPasskeys(t *testing.T) {
	env := newEnv(t)
	c, a := env.enrolled("yoshida")
	if fin, _ := env.login(c, a, "", authntest.Overrides{}); fin.status != http.StatusOK {
		t.Fatalf("login: %d", fin.status)
	}
	body, csrf, ids := env.accountPage(c)
	if len(ids) != 1 || !strings.Contains(body, "山田 太郎") || !strings.Contains(body, "パスキー 2026-04-01 18:00") {
		t.Fatalf("account page: %d passkeys\n%s", len(ids), body)
	}

	// Rename: needs the CSRF token.
	if res := env.postForm(c, PathPasskeyRename, url.Values{"id": {ids[0]}, "name": {"職場のPC"}}); res.status != http.StatusForbidden {
		t.Errorf("rename without CSRF token: %d", res.status)
	}
	// A token differing in its first character (never the same token:
	// "x" + csrf[1:] was csrf itself one time in 64).
	wrong := "x" + csrf[1:]
	if csrf[0] == 'x' {
		wrong = "y" + csrf[1:]
	}
	if res := env.postForm(c, PathPasskeyRename, url.Values{"id": {ids[0]}, "name": {"職場のPC"}, "csrf": {wrong}}); res.status != http.StatusForbidden {
		t.Errorf("rename with a wrong CSRF token: %d", res.status)
	}
	if res := env.postForm(c, PathPasskeyRename, url.Values{"id": {ids[0]}, "name": {""}, "csrf": {csrf}}); res.status != http.StatusBadRequest {
		t.Errorf("empty name: %d", res.status)
	}
	if res := env.postForm(c, PathPasskeyRename, url.Values{"id": {ids[0]}, "name": {"職場のPC"}, "csrf": {csrf}}); res.status != http.StatusSeeOther {
		t.Fatalf("rename: %d %s", res.status, res.body)
	}
	creds, _ := env.st.ListCredentials(context.Background(), "yoshida")
	if creds[0].Name != "職場のPC" {
		t.Errorf("name after rename: %q", creds[0].Name)
	}

	// The last passkey cannot be removed.
	if res := env.postForm(c, PathPasskeyRemove, url.Values{"id": {ids[0]}, "csrf": {csrf}}); res.status != http.StatusConflict {
		t.Errorf("removing the last passkey: %d", res.status)
	}

	// Add a second passkey from the signed-in session.
	b := authntest.New()
	begin := env.post(c, PathRegisterBegin, []byte(`{}`))
	if begin.status != http.StatusOK {
		t.Fatalf("add passkey begin: %d %s", begin.status, begin.body)
	}
	var opts struct {
		PublicKey struct {
			ExcludeCredentials []struct{ ID string } `json:"excludeCredentials"`
		} `json:"publicKey"`
	}
	_ = json.Unmarshal(begin.body, &opts)
	if len(opts.PublicKey.ExcludeCredentials) != 1 || opts.PublicKey.ExcludeCredentials[0].ID != ids[0] {
		t.Errorf("excludeCredentials = %+v, want the existing passkey", opts.PublicKey.ExcludeCredentials)
	}
	cred, _, _ := b.Create(begin.body, testOrigin, authntest.Overrides{})
	fin := env.post(c, PathRegisterFinish, cred)
	if fin.status != http.StatusOK || fin.json(t)["redirect"] != PathAccount+"?added=1" {
		t.Fatalf("add passkey finish: %d %s", fin.status, fin.body)
	}
	if ev := env.events.last(EventPasskeyAdded); ev == nil || ev.User != "yoshida" {
		t.Errorf("passkey_added event: %+v", ev)
	}

	// Now the first may go.
	_, csrf, ids = env.accountPage(c)
	if len(ids) != 2 {
		t.Fatalf("%d passkeys listed, want 2", len(ids))
	}
	if res := env.postForm(c, PathPasskeyRemove, url.Values{"id": {ids[0]}, "csrf": {csrf}}); res.status != http.StatusSeeOther {
		t.Fatalf("remove: %d %s", res.status, res.body)
	}
	if ev := env.events.last(EventPasskeyRemoved); ev == nil || ev.CredentialID != ids[0] {
		t.Errorf("passkey_removed event: %+v", ev)
	}
	creds, _ = env.st.ListCredentials(context.Background(), "yoshida")
	if len(creds) != 1 {
		t.Errorf("%d passkeys after removal, want 1", len(creds))
	}
	// Someone else's passkey id is "not found", not removed.
	if res := env.postForm(c, PathPasskeyRemove, url.Values{"id": {"c29tZW9uZS1lbHNl"}, "csrf": {csrf}}); res.status != http.StatusNotFound {
		t.Errorf("removing an unknown passkey: %d", res.status)
	}
}

func TestAddPasskeyNeedsRecentVerifiedLogin(t *testing.T) {
	env := newEnv(t)
	c, a := env.enrolled("shimizu")
	env.login(c, a, "", authntest.Overrides{})
	env.clock.Advance(16 * time.Minute)
	res := env.post(c, PathRegisterBegin, []byte(`{}`))
	if res.status != http.StatusForbidden || res.errCode() != "stepup_required" {
		t.Fatalf("add passkey with an old login: %d %s", res.status, res.body)
	}
	if rd, _ := res.json(t)["redirect"].(string); !strings.Contains(rd, "stepup=1") {
		t.Errorf("step-up redirect %q", rd)
	}
	// Without any session: login required.
	if res := env.post(env.client(), PathRegisterBegin, []byte(`{}`)); res.status != http.StatusUnauthorized {
		t.Errorf("add passkey without session: %d", res.status)
	}
}

func TestLogout(t *testing.T) {
	env := newEnv(t)
	c, a := env.enrolled("yamaguchi")
	env.login(c, a, "", authntest.Overrides{})
	_, csrf, _ := env.accountPage(c)
	cookies := c.Jar.Cookies(&url.URL{Scheme: "https", Host: testHost, Path: "/"})

	if res := env.postForm(c, PathLogout, url.Values{}); res.status != http.StatusForbidden {
		t.Errorf("logout without CSRF token: %d", res.status)
	}
	res := env.postForm(c, PathLogout, url.Values{"csrf": {csrf}, "rd": {"https://evil.test/"}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != PathLogin+"?logged_out=1" {
		t.Fatalf("logout: %d %s", res.status, res.header.Get("Location"))
	}
	if res := env.get(c, testOrigin+"/", "application/json"); res.status != http.StatusUnauthorized {
		t.Errorf("after logout: %d", res.status)
	}
	// The old cookie, kept by an attacker, is revoked too.
	thief := env.client()
	thief.Jar.SetCookies(&url.URL{Scheme: "https", Host: testHost, Path: "/"}, cookies)
	if res := env.get(thief, testOrigin+"/", "application/json"); res.status != http.StatusUnauthorized {
		t.Errorf("revoked cookie: %d", res.status)
	}
	if ev := env.events.last(EventLogout); ev == nil || ev.User != "yamaguchi" {
		t.Errorf("logout event: %+v", ev)
	}
}

func TestPagesHeadersAndLanguage(t *testing.T) {
	env := newEnv(t)
	c := env.client()
	res := env.get(c, testOrigin+PathLogin, "text/html")
	if got := res.header.Get("Content-Security-Policy"); got != "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'" {
		t.Errorf("CSP = %q", got)
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
		if got := res.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	body := string(res.body)
	if !strings.Contains(body, `<html lang="ja">`) || !strings.Contains(body, "パスキーでログイン") || !strings.Contains(body, "テスト市 アクセスゲートウェイ") {
		t.Errorf("default page is not Japanese:\n%s", body)
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(body, -1) {
		if !strings.Contains(tag, `src="/.sekisho/static/`) {
			t.Errorf("inline or foreign script: %s", tag)
		}
	}
	if strings.Contains(body, "style=") || strings.Contains(body, "<style") || strings.Contains(body, "onclick") {
		t.Error("inline style or handler in page")
	}

	req, _ := http.NewRequest(http.MethodGet, testOrigin+PathLogin+"?stepup=1", nil)
	req.Header.Set("Accept-Language", "en-US,en;q=0.9,ja;q=0.5")
	en := string(env.do(c, req).body)
	if !strings.Contains(en, `<html lang="en">`) || !strings.Contains(en, "Verify with your passkey") {
		t.Errorf("English step-up page:\n%s", en)
	}
	req.Header.Set("Accept-Language", "fr, ja;q=0.8")
	if ja := string(env.do(c, req).body); !strings.Contains(ja, "パスキーで本人確認") {
		t.Error("fr,ja should get Japanese")
	}

	js := env.get(c, testOrigin+PathStatic+"sekisho.js", "")
	if js.status != http.StatusOK || !strings.Contains(js.header.Get("Content-Type"), "javascript") || !strings.Contains(string(js.body), "parseRequestOptionsFromJSON") {
		t.Errorf("script: %d %s", js.status, js.header.Get("Content-Type"))
	}
	if css := env.get(c, testOrigin+PathStatic+"sekisho.css", ""); css.status != http.StatusOK || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Errorf("style sheet: %d %s", css.status, css.header.Get("Content-Type"))
	}
	if res := env.get(c, testOrigin+PathStatic, ""); res.status != http.StatusNotFound {
		t.Errorf("static directory listing: %d", res.status)
	}
	if res := env.get(c, testOrigin+"/.sekisho/nothing", "application/json"); res.status != http.StatusNotFound {
		t.Errorf("unknown path: %d", res.status)
	}
	jwks := env.get(c, testOrigin+PathJWKS, "")
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal(jwks.body, &set); jwks.status != http.StatusOK || err != nil || len(set.Keys) == 0 {
		t.Errorf("JWKS: %d %s", jwks.status, jwks.body)
	}

	// An error page shows both languages.
	res = env.get(c, testOrigin+PathEnroll+"?token=nope", "text/html")
	if res.status != http.StatusGone || !strings.Contains(string(res.body), "この登録用URLは無効") || !strings.Contains(string(res.body), "This enrollment link is invalid") {
		t.Errorf("invalid invitation page: %d\n%s", res.status, res.body)
	}
}

func TestEnrollURL(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*config.Config)
		host string
		want string
	}{
		{name: "first route, listen port", want: "https://zaimu.example.lg.jp:8443/.sekisho/enroll?token=T"},
		{name: "given host", host: "jinji.example.lg.jp", want: "https://jinji.example.lg.jp:8443/.sekisho/enroll?token=T"},
		{name: "port 443 left out", mod: func(c *config.Config) { c.Server.Listen = ":443" }, want: "https://zaimu.example.lg.jp/.sekisho/enroll?token=T"},
		{name: "public port", mod: func(c *config.Config) { c.Server.PublicPort = 443 }, want: "https://zaimu.example.lg.jp/.sekisho/enroll?token=T"},
		{name: "http on localhost", mod: func(c *config.Config) { c.Server.HTTPListen = "127.0.0.1:8080" }, host: "app.localhost",
			want: "http://app.localhost:8080/.sekisho/enroll?token=T"},
		{name: "http_listen but not localhost", mod: func(c *config.Config) { c.Server.HTTPListen = "127.0.0.1:8080" },
			want: "https://zaimu.example.lg.jp:8443/.sekisho/enroll?token=T"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.mod != nil {
				tt.mod(cfg)
			}
			got, err := EnrollURL(cfg, tt.host, "T")
			if err != nil || got != tt.want {
				t.Errorf("EnrollURL = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := EnrollURL(&config.Config{}, "", "T"); err == nil {
		t.Error("EnrollURL without any host should fail")
	}
}

func TestOrigins(t *testing.T) {
	tests := []struct {
		origins []string
		http    string
		origin  string
		want    bool
	}{
		{nil, "", "https://zaimu.example.lg.jp", true},
		{nil, "", "https://zaimu.example.lg.jp:8443", true},
		{nil, "", "https://zaimu.example.lg.jp:9000", false},
		{nil, "", "http://zaimu.example.lg.jp", false},
		{nil, "", "https://unrouted.example.lg.jp", false},
		{[]string{"https://*.example.lg.jp"}, "", "https://any.example.lg.jp", true},
		{[]string{"https://*.example.lg.jp"}, "", "https://a.b.example.lg.jp", false},
		{[]string{"https://*.example.lg.jp"}, "", "https://example.lg.jp", false},
		{[]string{"https://*.other.jp"}, "", "https://a.other.jp", false}, // not under the RP id
		{[]string{"https://zaimu.example.lg.jp:9443"}, "", "https://zaimu.example.lg.jp:9443", true},
		{[]string{"https://zaimu.example.lg.jp:9443"}, "", "https://zaimu.example.lg.jp", false},
	}
	for _, tt := range tests {
		cfg := testConfig()
		cfg.WebAuthn.Origins = tt.origins
		cfg.Server.HTTPListen = tt.http
		set, err := newOriginSet(cfg)
		if err != nil {
			t.Fatalf("%v: %v", tt.origins, err)
		}
		if got := set.allowed(tt.origin); got != tt.want {
			t.Errorf("origins %v: allowed(%s) = %v, want %v", tt.origins, tt.origin, got, tt.want)
		}
	}
	for _, bad := range []string{"zaimu.example.lg.jp", "https://a.*.example.lg.jp", "https://x/path", "ftp://x"} {
		cfg := testConfig()
		cfg.WebAuthn.Origins = []string{bad}
		if _, err := newOriginSet(cfg); err == nil {
			t.Errorf("origin %q accepted", bad)
		}
	}
}
