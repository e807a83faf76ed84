package attack

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/internal/apptest"
)

// TestPathConfusion sends, byte for byte, the paths that have let clients
// past prefix rules of other gateways (nginx "merge_slashes off" setups,
// Pomerium and oauth2-proxy path bypasses, Tomcat ";" parameters, IIS
// case folding and trailing dots). suzuki has no admin role: every spelling
// of /admin must be denied or refused, and every request let through must
// reach the upstream with exactly the path that was authorised.
func TestPathConfusion(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")

	cases := []struct {
		name, host, target string
		// want is the status; for 200 the upstream must have seen upPath.
		want   int
		upPath string
		// decision in the audit record.
		decision string
		// netHTTP: refused by net/http before the gateway sees it.
		netHTTP bool
	}{
		{"dotdot", zaimu, "/public/../admin", 403, "", "deny", false},
		{"encoded dotdot", zaimu, "/x/%2e%2e/admin", 403, "", "deny", false},
		{"upper encoded dotdot", zaimu, "/x/%2E%2E/admin/", 403, "", "deny", false},
		{"encoded dot-dot-slash", zaimu, "/%2e%2e%2fadmin", 400, "", "error", false},
		{"encoded slash inside", zaimu, "/admin%2fx", 400, "", "error", false},
		{"encoded slash before", zaimu, "/public%2f..%2fadmin", 400, "", "error", false},
		{"encoded backslash", zaimu, "/public%5c..%5cadmin", 400, "", "error", false},
		{"raw backslash", zaimu, "/public\\..\\admin", 400, "", "error", false},
		{"double slash", zaimu, "//admin", 403, "", "deny", false},
		{"many slashes", zaimu, "///admin//x", 403, "", "deny", false},
		{"dot segment", zaimu, "/./admin", 403, "", "deny", false},
		{"semicolon parameter", zaimu, "/admin;x", 403, "", "deny", false},
		{"semicolon after slash", zaimu, "/admin/;x/y", 403, "", "deny", false},
		{"case on case-insensitive route", bunsho, "/ADMIN", 403, "", "deny", false},
		{"mixed case on case-insensitive route", bunsho, "/aDmIn/users", 403, "", "deny", false},
		{"encoded case on case-insensitive route", bunsho, "/%41DMIN", 403, "", "deny", false},
		{"case on case-sensitive route", zaimu, "/ADMIN", 200, "/ADMIN", "allow", false},
		{"trailing dot", zaimu, "/admin.", 400, "", "error", false},
		{"trailing dot then segment", zaimu, "/admin./x", 400, "", "error", false},
		{"trailing space", zaimu, "/admin%20", 400, "", "error", false},
		{"encoded NUL", zaimu, "/admin%00.html", 400, "", "error", false},
		{"encoded NUL before", zaimu, "/public%00/../admin", 400, "", "error", false},
		{"overlong dot", zaimu, "/x/%c0%ae%c0%ae/admin", 400, "", "error", false},
		{"overlong slash", zaimu, "/x%c0%afadmin", 400, "", "error", false},
		{"bad escape", zaimu, "/admin%zz", 400, "", "error", true},
		{"fragment", zaimu, "/public#/../admin", 400, "", "error", false},
		{"fragment after admin", zaimu, "/admin#x", 400, "", "error", false},
		{"query names admin", zaimu, "/public?x=/admin", 200, "/public", "allow", false},
		{"query dotdot", zaimu, "/public?/../admin", 200, "/public", "allow", false},
		{"export with admin query", zaimu, "/export?x=/admin", 403, "", "deny", false},
		{"dotdot above root", zaimu, "/../../admin", 403, "", "deny", false},
		{"allowed path", zaimu, "/public/report", 200, "/public/report", "allow", false},
		{"encoded ordinary byte", zaimu, "/p%75blic", 200, "/public", "allow", false},
		{"utf-8 path", zaimu, "/%E8%B2%A1%E5%8B%99", 200, "/財務", "allow", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seenBefore := len(w.Seen())
			r := w.Raw(raw("GET", c.target, c.host, cookie))
			if r.Status != c.want {
				t.Fatalf("GET %s on %s: status %d, want %d (%.200s)", c.target, c.host, r.Status, c.want, r.Body)
			}
			if c.netHTTP && len(w.Seen()) != seenBefore {
				// net/http refuses the request line before sekisho's handler
				// runs; sekisho's listener still gives it a request id and an
				// audit record (rule "net/http"; gap G1, closed).
				t.Fatal("refused request reached the upstream")
			}
			id := rid(t, r)
			rec := decisionRecord(t, w, id)
			if rec.Decision != c.decision {
				t.Errorf("audit decision %q, want %q (reasons %v)", rec.Decision, c.decision, rec.Reasons)
			}
			if (rec.Rule == "net/http") != c.netHTTP {
				t.Errorf("audit rule %q, net/http refusal expected: %t", rec.Rule, c.netHTTP)
			}
			seen, forwarded := seenByID(w, id)
			if c.want != http.StatusOK {
				if forwarded {
					t.Fatalf("refused request reached the upstream as %q", seen.Path)
				}
				return
			}
			if !forwarded {
				t.Fatal("allowed request never reached the upstream")
			}
			if seen.Path != c.upPath {
				t.Errorf("upstream saw path %q, want %q", seen.Path, c.upPath)
			}
			// The path decided on is the path forwarded.
			if p, _, _ := strings.Cut(rec.Path, "?"); p != seen.Path {
				t.Errorf("audit record authorised %q but the upstream saw %q", rec.Path, seen.Path)
			}
		})
	}
	// Nothing under /admin (in any case on bunsho) ever reached the upstream.
	for _, s := range w.Seen() {
		if strings.HasPrefix(s.Path, "/admin") || (s.Host == bunsho && strings.HasPrefix(strings.ToLower(s.Path), "/admin")) {
			t.Errorf("upstream saw %s %s", s.Host, s.Path)
		}
	}
	if res := w.Verify(); !res.OK() {
		t.Errorf("audit trail does not verify: %+v", res)
	}
}

// TestPathConfusionOverTLS repeats the decisive spellings through a real
// client on the TLS listener, over HTTP/1.1 and HTTP/2 (where the path is
// the :path pseudo-header), with the path sent opaque so that the client
// library cleans nothing.
func TestPathConfusionOverTLS(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: w.CAPool, ServerName: zaimu}, ForceAttemptHTTP2: h2}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for _, p := range []string{"/public/../admin", "/x/%2e%2e/admin", "//admin", "/admin;x", "/%2e%2e%2fadmin", "/ADMIN/../admin", "/public/%2e%2e/admin"} {
			if h2 && p == "//admin" {
				continue // Go's HTTP/2 client refuses to send it
			}
			req, _ := http.NewRequest("GET", "https://"+w.HTTPS+"/", nil)
			req.URL.Opaque = p
			req.Host = zaimu
			req.Header.Set("Accept", "text/html")
			req.AddCookie(&http.Cookie{Name: "__Host-sekisho", Value: cookie})
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s (h2 %v): %v", p, h2, err)
			}
			resp.Body.Close()
			if want := 2; h2 && resp.ProtoMajor != want {
				t.Fatalf("asked for HTTP/2, got %s", resp.Proto)
			}
			// "//admin" as an opaque target is sent as "https://admin":
			// an unknown host, 404.
			if resp.StatusCode != 403 && resp.StatusCode != 400 && resp.StatusCode != 404 {
				t.Errorf("%s over TLS (h2 %v): %d", p, h2, resp.StatusCode)
			}
			rec := decisionRecord(t, w, resp.Header.Get("X-Request-Id"))
			if rec.Decision == audit.DecisionAllow {
				t.Errorf("%s (h2 %v): audit says allow", p, h2)
			}
		}
		tr.CloseIdleConnections()
	}
	if len(w.Seen()) != 0 {
		t.Errorf("upstream saw %v", w.Seen())
	}
}
