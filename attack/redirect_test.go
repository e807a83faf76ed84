package attack

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/internal/apptest"
)

// evilRedirects are rd values that have turned login and logout pages of
// other gateways into open redirects (oauth2-proxy's "/\evil", "//evil",
// tab/newline-stripping browsers, userinfo, scheme tricks).
var evilRedirects = []string{
	"https://evil.example/",
	"http://evil.example/",
	"//evil.example/",
	"///evil.example/",
	`\\evil.example`,
	`/\evil.example`,
	`\/evil.example`,
	"/%5cevil.example",
	"/%2f/evil.example",
	"%2f%2fevil.example",
	"/%09/evil.example",
	"/%0a/evil.example",
	"/%0d%0a/evil.example",
	"/\t/evil.example",
	" //evil.example",
	"/%2509/evil.example",
	"https://" + zaimu + "@evil.example/",
	"https://" + zaimu + ":443@evil.example/",
	"https://evil.example\\@" + zaimu + "/",
	"https://evil.example#@" + zaimu + "/",
	"https://evil.example?@" + zaimu + "/",
	"https://" + zaimu + ".evil.example/",
	"https://" + zaimu + "%2f@evil.example/",
	"https://" + zaimu + "%00.evil.example/",
	"https:evil.example",
	"https:/evil.example",
	"https:\\\\evil.example",
	"javascript:alert(document.domain)",
	"JaVaScRiPt:alert(1)",
	"javascript://" + zaimu + "/%0aalert(1)",
	"data:text/html,<script>alert(1)</script>",
	"vbscript:msgbox(1)",
	"https://ｅvil.example/",
	"https://evil.example%E3%80%82" + zaimu,
	"//" + zaimu + "\u3002evil.example",
}

// safeLocation reports whether a redirect target stays on sekisho's hosts:
// a path on the current host ("/" not followed by "/" or "\") or an https
// URL on a configured route host.
func safeLocation(loc string) bool {
	if loc == "" {
		return true
	}
	for _, c := range loc {
		if c <= 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	if strings.HasPrefix(loc, "/") {
		return !strings.HasPrefix(loc, "//") && !strings.HasPrefix(loc, "/\\")
	}
	u, err := url.Parse(loc)
	if err != nil || u.User != nil || u.Scheme != "https" {
		return false
	}
	switch u.Hostname() {
	case zaimu, juki, bunsho:
		return true
	}
	return false
}

// TestOpenRedirect: neither the login page (signed out: the page; signed
// in: a 303) nor logout ever sends the browser off the route hosts.
func TestOpenRedirect(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	c := client(t, w, zaimu, nil)

	// A CSRF token for logout comes from the account page.
	csrf := func(cookie string) string {
		r := w.Get(zaimu, "/.sekisho/account", cookie, nil)
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(r.Body)
		if m == nil {
			t.Fatalf("no CSRF token on the account page (%d)", r.Status)
		}
		return m[1]
	}

	for _, rd := range evilRedirects {
		t.Run(rd, func(t *testing.T) {
			target := "/.sekisho/login?rd=" + url.QueryEscape(rd)

			// Signed out: the login page. It must not carry rd anywhere.
			r := w.Get(zaimu, target, "", nil)
			if r.Status != http.StatusOK {
				t.Fatalf("login page: %d", r.Status)
			}
			// A path on this host may be carried (it is safe); nothing that
			// leaves the host may.
			low := strings.ToLower(r.Body)
			if strings.Contains(low, "//evil.example") || strings.Contains(low, "@evil.example") || strings.Contains(low, "\\evil") ||
				strings.Contains(low, "javascript:") || strings.Contains(low, "data:text") || strings.Contains(low, "vbscript:") {
				t.Errorf("login page carries the refused rd: %.300s", r.Body)
			}
			if loc := r.Header.Get("Location"); !safeLocation(loc) {
				t.Errorf("login page Location %q", loc)
			}

			// Signed in: straight to rd, if safe; else to the account page.
			r = w.Get(zaimu, target, cookie, nil)
			if r.Status != http.StatusSeeOther {
				t.Fatalf("signed-in login page: %d", r.Status)
			}
			if loc := r.Header.Get("Location"); !safeLocation(loc) {
				t.Errorf("signed-in login redirects to %q", loc)
			}

			// Logout with rd (a fresh session each time, since logout
			// revokes it).
			sess := w.Login("suzuki", apptest.UV, time.Minute, "", "")
			form := url.Values{"csrf": {csrf(sess)}, "rd": {rd}}
			req, _ := http.NewRequest("POST", "https://"+w.HTTPS+"/.sekisho/logout", strings.NewReader(form.Encode()))
			req.Host = zaimu
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "text/html")
			req.AddCookie(&http.Cookie{Name: "__Host-sekisho", Value: sess})
			r = do(t, c, req)
			if r.Status != http.StatusSeeOther {
				t.Fatalf("logout: %d %.200s", r.Status, r.Body)
			}
			if loc := r.Header.Get("Location"); !safeLocation(loc) {
				t.Errorf("logout redirects to %q", loc)
			}
			// Logout is audited as an authn event.
			found := false
			for _, rec := range w.Records(rid(t, r)) {
				if rec.Event == audit.EventAuthn {
					found = true
				}
			}
			if !found {
				t.Error("logout left no authn audit record")
			}
		})
	}

	// The same host's path and another route host stay allowed (so the
	// test above is not passing because everything is refused).
	for rd, want := range map[string]string{
		"/public/report?q=1":     "/public/report?q=1",
		"https://" + juki + "/x": "https://" + juki + "/x",
	} {
		r := w.Get(zaimu, "/.sekisho/login?rd="+url.QueryEscape(rd), cookie, nil)
		if loc := r.Header.Get("Location"); loc != want {
			t.Errorf("rd %q: Location %q, want %q", rd, loc, want)
		}
	}
}

// TestLoginPageAudit: requests sekisho answers itself are recorded, so a
// refused rd on the login page is visible in the trail (rd kept, other
// query values such as enrollment tokens dropped).
func TestLoginPageAudit(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	r := w.Get(zaimu, "/.sekisho/login?rd="+url.QueryEscape("https://evil.example/"), "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("login page: %d", r.Status)
	}
	id := r.Header.Get("X-Request-Id")
	recs := w.Records(id)
	if id == "" || len(recs) != 1 {
		t.Fatalf("login page request %q: %d records, want 1", id, len(recs))
	}
	if recs[0].Event != "authn" || !strings.Contains(recs[0].Path, "evil.example") {
		t.Errorf("login page record: event %q path %q; want authn with the refused rd", recs[0].Event, recs[0].Path)
	}
	// An enrollment token never reaches the trail.
	r = w.Get(zaimu, "/.sekisho/enroll?token=SECRET-TOKEN-VALUE", "", nil)
	enroll := w.Records(r.Header.Get("X-Request-Id"))
	if len(enroll) != 1 {
		t.Fatalf("enrollment page: %d records, want 1", len(enroll))
	}
	for _, rec := range enroll {
		if strings.Contains(rec.Path, "SECRET-TOKEN-VALUE") {
			t.Errorf("enrollment token recorded: %q", rec.Path)
		}
	}
}
