package admin

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/reqctx"
	"github.com/sekisho/sekisho/store"
)

func TestNewRequiresDependencies(t *testing.T) {
	_, err := New(Deps{})
	if err == nil || !strings.Contains(err.Error(), "Store") || !strings.Contains(err.Error(), "Record") {
		t.Fatalf("New(Deps{}) = %v; want an error naming the missing dependencies", err)
	}
	e := newEnv(t)
	d := e.console.d
	d.CSRFKey = []byte("short")
	if _, err := New(d); err == nil {
		t.Fatal("New with a 5-byte CSRF key succeeded")
	}
}

// The gateway refuses non-admins; the console still refuses a request
// that reaches it without a signed-in user.
func TestRefusesWithoutUser(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		set  func(*reqctx.Info)
	}{
		{"no request context", func(i *reqctx.Info) { i.User = "-" }},
		{"context without user", func(i *reqctx.Info) { i.User = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved := e.info
			e.setInfo(tc.set)
			defer e.setInfo(func(i *reqctx.Info) { *i = saved })
			for _, p := range []string{"/", "/users", "/audit", "/audit.csv", "/revoke", "/static/console.css"} {
				if r := e.get(Prefix + p); r.Status != http.StatusForbidden {
					t.Errorf("GET %s = %d; want 403", p, r.Status)
				}
			}
			r := e.do("POST", Prefix+"/users", url.Values{"id": {"mallory"}}, nil)
			if r.Status != http.StatusForbidden {
				t.Errorf("POST /users = %d; want 403", r.Status)
			}
		})
	}
	if _, err := e.store.GetUser(context.Background(), "mallory"); err == nil {
		t.Error("a user was created by a request without a signed-in admin")
	}
}

func TestSecurityHeadersAndNoScript(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/", "/audit", "/timeline?user=admin1", "/users", "/users/view?id=admin1", "/devices", "/revoke", "/policy", "/nope"} {
		r := e.get(Prefix + p)
		csp := r.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "style-src 'self'", "img-src 'self' data:", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") || strings.Contains(csp, "script-src") {
			t.Errorf("GET %s: CSP %q allows scripts or inline code", p, csp)
		}
		if got := r.Header.Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("GET %s: Referrer-Policy %q", p, got)
		}
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("GET %s: Cache-Control %q", p, got)
		}
		low := strings.ToLower(r.Body)
		for _, bad := range []string{"<script", "javascript:", " onclick=", " onload=", " onsubmit=", " style=\"", "http://", "https://cdn"} {
			if strings.Contains(low, bad) {
				t.Errorf("GET %s: page contains %q (pages must work without script, inline style or outside resources)", p, bad)
			}
		}
		if !strings.Contains(r.Body, `href="/.sekisho/admin/static/console.css"`) {
			t.Errorf("GET %s: no link to the embedded stylesheet", p)
		}
	}
	css := e.get(Prefix + "/static/console.css")
	if css.Status != 200 || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") || !strings.Contains(css.Body, "@media print") {
		t.Errorf("stylesheet: %d %q; want 200 text/css with print rules", css.Status, css.Header.Get("Content-Type"))
	}
}

func TestCSRFRefused(t *testing.T) {
	e := newEnv(t)
	same := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": e.srv.URL}
	other := New2CSRF(e, "another-session")
	for _, tc := range []struct {
		name  string
		token string
	}{
		{"missing", ""},
		{"wrong", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"not base64", "%%%"},
		{"another session's", other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := url.Values{"id": {"csrf-" + strings.ReplaceAll(tc.name, " ", "")}, "display_name": {"x"}}
			if tc.token != "" {
				f.Set("csrf", tc.token)
			}
			r := e.do("POST", Prefix+"/users", f, same)
			if r.Status != http.StatusForbidden {
				t.Fatalf("POST with %s token = %d; want 403", tc.name, r.Status)
			}
			contains(t, r.Body, "フォームの有効期限が切れたか")
			if _, err := e.store.GetUser(context.Background(), f.Get("id")); err == nil {
				t.Error("the user was created despite the bad token")
			}
		})
	}
	// An admin session without an id cannot post at all.
	e.setInfo(func(i *reqctx.Info) { i.SessionID = "" })
	r := e.do("POST", Prefix+"/users", url.Values{"id": {"nosession"}, "csrf": {""}}, same)
	if r.Status != http.StatusForbidden {
		t.Errorf("POST without a session id = %d; want 403", r.Status)
	}
}

// New2CSRF is the valid token of another session.
func New2CSRF(e *env, session string) string { return e.console.csrfToken(session) }

func TestCrossOriginPostRefused(t *testing.T) {
	e := newEnv(t)
	token := e.console.csrfToken(e.info.SessionID)
	for _, tc := range []struct {
		name string
		hdr  map[string]string
	}{
		{"Sec-Fetch-Site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"Sec-Fetch-Site same-site", map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"Origin of another site", map[string]string{"Origin": "https://evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", Prefix+"/revoke", url.Values{"csrf": {token}, "step": {"confirm"}, "kind": {"all"}, "reason": {"x"}}, tc.hdr)
			if r.Status != http.StatusForbidden {
				t.Fatalf("cross-origin POST = %d; want 403", r.Status)
			}
			contains(t, r.Body, "別のサイトからの操作は受け付けません")
		})
	}
	// The same form from the same origin passes both checks.
	if r := e.post(Prefix+"/revoke", url.Values{"step": {"confirm"}, "kind": {"all"}, "reason": {"x"}}); r.Status != 200 {
		t.Errorf("same-origin POST = %d; want 200", r.Status)
	}
}

func TestMethodsAndRedirect(t *testing.T) {
	e := newEnv(t)
	if r := e.do("DELETE", Prefix+"/users", nil, nil); r.Status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE = %d; want 405", r.Status)
	}
	if r := e.get(Prefix); r.Status != http.StatusSeeOther || r.Header.Get("Location") != Prefix+"/" {
		t.Errorf("GET %s = %d %q; want 303 to %s/", Prefix, r.Status, r.Header.Get("Location"), Prefix)
	}
	if r := e.get(Prefix + "/nope"); r.Status != http.StatusNotFound {
		t.Errorf("GET /nope = %d; want 404", r.Status)
	}
	if r := e.do("HEAD", Prefix+"/users", nil, nil); r.Status != 200 || r.Body != "" {
		t.Errorf("HEAD /users = %d with %d bytes", r.Status, len(r.Body))
	}
}

func TestLanguage(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		accept   string
		lang     string
		want     string
		unwanted string
	}{
		{"", "ja", "利用者", "Add a user"},
		{"ja,en;q=0.8", "ja", "利用者の追加", "Add a user"},
		{"en-US,en;q=0.9", "en", "Add a user", "利用者の追加"},
		{"ja;q=0.5, en", "en", "Staff with a passkey", "パスキー登録率"},
		{"fr", "ja", "利用者の追加", "Add a user"},
	} {
		t.Run(tc.accept, func(t *testing.T) {
			r := e.do("GET", Prefix+"/users", nil, map[string]string{"Accept-Language": tc.accept})
			contains(t, r.Body, `<html lang="`+tc.lang+`">`, tc.want)
			lacks(t, r.Body, tc.unwanted)
		})
	}
	// Error pages follow the language too.
	r := e.do("GET", Prefix+"/nope", nil, map[string]string{"Accept-Language": "en"})
	contains(t, r.Body, "Page not found")
}

// Every message has both languages, and every key a template or the code
// uses exists (an unknown key renders as itself).
func TestMessagesComplete(t *testing.T) {
	for k, m := range messages {
		if m[0] == "" || m[1] == "" {
			t.Errorf("message %q lacks a language", k)
		}
		if strings.Count(m[0], "%") != strings.Count(m[1], "%") {
			t.Errorf("message %q: Japanese and English take different arguments", k)
		}
	}
}

func TestCSRFKeyFromStore(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	k1, err := CSRFKeyFromStore(ctx, e.store)
	if err != nil || len(k1) != 32 {
		t.Fatalf("first key: %d bytes, %v", len(k1), err)
	}
	k2, err := CSRFKeyFromStore(ctx, e.store)
	if err != nil || string(k1) != string(k2) {
		t.Fatalf("second call returned another key (%v)", err)
	}
	// A second replica's key, created later, loses to the oldest.
	if err := e.store.PutKey(ctx, &store.Key{ID: KeyUse + "-later", Use: KeyUse, JWK: []byte("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE"), CreatedAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if k3, _ := CSRFKeyFromStore(ctx, e.store); string(k3) != string(k1) {
		t.Error("replicas would disagree on the key")
	}
}
