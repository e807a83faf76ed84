package attack

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/apptest"
)

// TestCrossSiteRequests: a page on another site cannot drive sekisho's
// endpoints with the victim's cookie (logout CSRF, login CSRF, reading
// /.sekisho/me through CORS).
func TestCrossSiteRequests(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	c := client(t, w, zaimu, nil)
	acct := w.Get(zaimu, "/.sekisho/account", cookie, nil)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(acct.Body)
	if m == nil {
		t.Fatalf("no CSRF token on the account page (%d)", acct.Status)
	}
	token := m[1]

	post := func(path, body, contentType string, hdr ...string) apptest.Response {
		req, _ := http.NewRequest("POST", "https://"+w.HTTPS+path, strings.NewReader(body))
		req.Host = zaimu
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Accept", "text/html")
		for _, h := range hdr {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		req.AddCookie(&http.Cookie{Name: "__Host-sekisho", Value: cookie})
		return do(t, c, req)
	}
	form := url.Values{"csrf": {token}}.Encode()
	for name, hdr := range map[string][]string{
		"Origin evil":              {"Origin: https://evil.example"},
		"Sec-Fetch-Site cross":     {"Sec-Fetch-Site: cross-site"},
		"Origin sibling subdomain": {"Origin: https://evil.gw.example.lg.jp"},
		"Origin null":              {"Origin: null", "Sec-Fetch-Site: cross-site"},
	} {
		if r := post("/.sekisho/logout", form, "application/x-www-form-urlencoded", hdr...); r.Status != http.StatusForbidden {
			t.Errorf("logout with %s: %d", name, r.Status)
		}
		if r := post("/.sekisho/webauthn/login/begin", "{}", "application/json", hdr...); r.Status < 400 {
			t.Errorf("login/begin with %s: %d", name, r.Status)
		}
	}
	// Without the token, from the same origin: refused too.
	if r := post("/.sekisho/logout", "", "application/x-www-form-urlencoded", "Origin: https://"+zaimu); r.Status != http.StatusForbidden {
		t.Errorf("logout without CSRF token: %d", r.Status)
	}
	// The session survived all of the above.
	if r := w.Get(zaimu, "/public", cookie, nil); r.Status != 200 {
		t.Fatalf("session ended by a cross-site request: %d", r.Status)
	}
	// No CORS grants on sekisho's JSON.
	r := w.Get(zaimu, "/.sekisho/me", cookie, nil, "Origin: https://evil.example")
	if a := r.Header.Get("Access-Control-Allow-Origin"); a != "" {
		t.Errorf("/.sekisho/me grants CORS to %q", a)
	}
}
