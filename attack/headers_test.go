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

// TestHeaderSpoofing: upstreams trust X-Sekisho-* and X-Forwarded-*, so a
// client must never be able to set them (the oauth2-proxy and nginx
// auth_request family of bugs where X-Forwarded-User or X-Original-URL from
// the client reached the application).
func TestHeaderSpoofing(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")

	spoof := []string{
		"X-Sekisho-User: tanaka",
		"x-sekisho-roles: 財務管理者",
		"X-SEKISHO-CLASS: 1",
		"X_Sekisho_User: tanaka",
		"x_sekisho_device: PC-EVIL",
		"X-Sekisho-Assertion: eyJhbGciOiJub25lIn0.e30.",
		"X-Sekisho-Anything: x",
		"X-Forwarded-For: 10.9.0.1",
		"X-Forwarded-Host: evil.example",
		"X-Forwarded-Proto: https",
		"X-Forwarded-Uri: /admin",
		"X-Forwarded-Prefix: /admin",
		"X_Forwarded_For: 10.9.0.2",
		"Forwarded: for=10.9.0.3;host=evil.example;proto=https",
		"X-Real-Ip: 10.9.0.4",
		"X-Original-URL: /admin",
		"X-Rewrite-URL: /admin",
		"X-Request-Id: attacker-chosen",
		"Cookie: other=kept",
	}
	r := w.Raw(raw("GET", "/public", zaimu, cookie, spoof...))
	if r.Status != 200 {
		t.Fatalf("status %d: %.300s", r.Status, r.Body)
	}
	id := rid(t, r)
	if id == "attacker-chosen" {
		t.Fatal("the client chose the request id")
	}
	rec := decisionRecord(t, w, id)
	if rec.IP != "127.0.0.1" || rec.Zone != "chonai" || rec.User != "suzuki" {
		t.Errorf("audit record took spoofed values: ip %s zone %s user %s", rec.IP, rec.Zone, rec.User)
	}
	seen, ok := seenByID(w, id)
	if !ok {
		t.Fatal("not forwarded")
	}
	want := map[string]string{
		"X-Sekisho-User":    "suzuki",
		"X-Sekisho-Roles":   "財務",
		"X-Sekisho-Class":   "2",
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Host":  zaimu,
		"X-Forwarded-Proto": "http",
		"X-Request-Id":      id,
	}
	for k, v := range want {
		if got := seen.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("upstream %s = %q, want exactly %q", k, got, v)
		}
	}
	for k := range seen.Header {
		n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		switch {
		case strings.HasPrefix(n, "x-sekisho-"):
			if _, ours := want[http.CanonicalHeaderKey(k)]; !ours && k != "X-Sekisho-Assertion" {
				t.Errorf("upstream got client header %s: %q", k, seen.Header[k])
			}
		case n == "forwarded", n == "x-real-ip", n == "x-original-url", n == "x-rewrite-url",
			n == "x-forwarded-uri", n == "x-forwarded-prefix":
			t.Errorf("upstream got client header %s: %q", k, seen.Header[k])
		}
	}
	if a := seen.Header.Get("X-Sekisho-Assertion"); !strings.HasPrefix(a, "eyJ") || strings.Contains(a, "bm9uZ") {
		t.Errorf("assertion is not sekisho's: %q", a)
	}
	if c := seen.Header.Get("Cookie"); c != "other=kept" {
		t.Errorf("upstream Cookie = %q, want only the other cookie", c)
	}
	if _, ok := seen.Header["X-Device-Id"]; ok {
		t.Error("unexpected header")
	}
}

// TestHopByHopAbuse: naming sekisho's own headers (or the cookie, or the
// forwarding headers) in Connection must not make the proxy strip them
// after it set them, nor make an identity header survive.
func TestHopByHopAbuse(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	for _, conn := range []string{
		"Connection: X-Sekisho-User",
		"Connection: X-Sekisho-Assertion, X-Forwarded-For",
		"Connection: Cookie",
		"Connection: X-Request-Id, X-Sekisho-Class",
		"Connection: keep-alive, X-Sekisho-Roles",
	} {
		t.Run(conn, func(t *testing.T) {
			r := w.Raw(raw("GET", "/public", zaimu, cookie, conn, "X-Sekisho-User: tanaka"))
			if r.Status != 200 {
				t.Fatalf("status %d: %.200s", r.Status, r.Body)
			}
			id := rid(t, r)
			decisionRecord(t, w, id)
			seen, ok := seenByID(w, id)
			if !ok {
				t.Fatal("not forwarded (or X-Request-Id stripped on the way)")
			}
			for k, v := range map[string]string{"X-Sekisho-User": "suzuki", "X-Sekisho-Class": "2", "X-Forwarded-For": "127.0.0.1", "X-Sekisho-Roles": "財務"} {
				if got := seen.Header.Get(k); got != v {
					t.Errorf("upstream %s = %q, want %q", k, got, v)
				}
			}
			if seen.Header.Get("X-Sekisho-Assertion") == "" {
				t.Error("the assertion was stripped")
			}
			if strings.Contains(seen.Header.Get("Cookie"), "__Host-sekisho") {
				t.Error("the session cookie reached the upstream")
			}
		})
	}
}

// TestMalformedRequests: request-line and header tricks used for request
// smuggling and routing confusion. Each is either refused (4xx/5xx) before
// any upstream sees it, or — where RFC 9112 lets a recipient repair the
// message and net/http does — repaired so that the upstream gets one
// re-framed request carrying sekisho's identity headers only, and anything
// pipelined behind it is decided by sekisho as a request of its own.
func TestMalformedRequests(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	ck := "Cookie: __Host-sekisho=" + cookie + "\r\n"
	const (
		refuse = iota
		repair // accepted as RFC 9112 allows, but must not inject anything
		// reframeAndClose: Transfer-Encoding with Content-Length. Chunked
		// framing wins (RFC 9112 §6.3), the upstream gets one re-framed
		// request, and the connection is closed after the answer (§6.1
		// MUST), so what a front end might have framed differently is
		// never read as a next request.
		reframeAndClose
	)
	cases := []struct {
		name string
		mode int
		req  string
	}{
		{"duplicate Host", refuse, "GET /public HTTP/1.1\r\nHost: " + zaimu + "\r\nHost: juki.gw.example.lg.jp\r\n" + ck + "\r\n"},
		{"TE and CL", reframeAndClose, "POST /public HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "\r\n"},
		{"CL and TE", reframeAndClose, "POST /public HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "Transfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: " + zaimu + "\r\n\r\n"},
		{"two Content-Lengths", refuse, "POST /public HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "Content-Length: 0\r\nContent-Length: 40\r\n\r\nGET /admin HTTP/1.1\r\nHost: " + zaimu + "\r\n\r\n"},
		{"TE obfuscated", refuse, "POST /public HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
		{"TE list", refuse, "POST /public HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"},
		{"TE with space before colon", refuse, "POST /public HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
		{"negative Content-Length", refuse, "POST /public HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "Content-Length: -1\r\n\r\n"},
		{"obs-fold", repair, "GET /public HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "X-Note: a\r\n X-Sekisho-User: tanaka\r\n\r\n"},
		{"space in header name", refuse, "GET /public HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "X Sekisho User: tanaka\r\n\r\n"},
		{"control in header name", refuse, "GET /public HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "X-Sekisho\x01User: tanaka\r\n\r\n"},
		{"bare LF line", repair, "GET /public HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "X-A: 1\nX-Sekisho-User: tanaka\r\n\r\n"},
		{"NUL in request line", refuse, "GET /public\x00/../admin HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "\r\n"},
		{"HTTP/1.1 without Host", refuse, "GET /public HTTP/1.1\r\n" + ck + "\r\n"},
		{"bad version", refuse, "GET /public HTTP/9.9\r\nHost: " + zaimu + "\r\n" + ck + "\r\n"},
		{"space in target", refuse, "GET /public /admin HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(w.Seen())
			resp := rawResponse(t, w.HTTP, c.req)
			st := resp.Status
			// Let a racing forward or a pipelined request land before looking.
			time.Sleep(50 * time.Millisecond)
			seen := w.Seen()[before:]
			if c.mode == refuse {
				if st < 400 {
					t.Fatalf("status %d, want a refusal", st)
				}
				for _, s := range seen {
					t.Errorf("upstream saw %s %s (X-Sekisho-User %q)", s.Method, s.Path, s.Header.Get("X-Sekisho-User"))
				}
				// Every refusal is audited, whether the gateway or net/http
				// (rule "net/http", gap G1 closed) refused it.
				rec := decisionRecord(t, w, rid(t, resp))
				if rec.Decision != audit.DecisionError && rec.Decision != audit.DecisionDeny {
					t.Errorf("audit decision %q for a refusal", rec.Decision)
				}
				return
			}
			if st != 200 && st < 400 {
				t.Fatalf("status %d", st)
			}
			if len(seen) > 1 {
				t.Errorf("upstream saw %d requests from one message", len(seen))
			}
			for _, s := range seen {
				if s.Path != "/public" || s.Header.Get("X-Sekisho-User") != "suzuki" || len(s.Header.Values("X-Sekisho-User")) != 1 {
					t.Errorf("upstream saw %s %s as %q", s.Method, s.Path, s.Header.Values("X-Sekisho-User"))
				}
				if s.Header.Get("Content-Length") != "" && s.Header.Get("Transfer-Encoding") != "" {
					t.Errorf("upstream got both Content-Length and Transfer-Encoding")
				}
			}
			if c.mode == reframeAndClose {
				if n := rawResponseCount(t, w.HTTP, c.req); n != 1 {
					t.Errorf("%d answers on the connection, want 1 and then the connection closed", n)
				}
				decisionRecord(t, w, rid(t, resp))
			}
		})
	}
	if seenPath(w, func(p string) bool { return strings.HasPrefix(p, "/admin") }) {
		t.Error("a smuggled /admin request reached the upstream")
	}
}

// TestAbsoluteFormRouting: a request target in absolute form names one
// host while Host names another. sekisho must route, decide, record and
// forward by one of them consistently (the URL's, as RFC 9112 §3.2.2
// requires), never mix one route's policy with another's upstream.
func TestAbsoluteFormRouting(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")

	// The URL names juki (3B, device certificate required), Host names
	// zaimu: sekisho routes by the URL, so juki's rules apply and the
	// request is refused; it never reaches zaimu's upstream with juki's
	// or zaimu's identity.
	r := w.Raw("GET http://" + juki + "/records HTTP/1.1\r\nHost: " + zaimu + "\r\nCookie: __Host-sekisho=" + cookie + "\r\nAccept: text/html\r\nConnection: close\r\n\r\n")
	if r.Status != http.StatusForbidden {
		t.Fatalf("absolute-form juki with Host zaimu: %d %.200s", r.Status, r.Body)
	}
	rec := decisionRecord(t, w, rid(t, r))
	if rec.Route != "juki" || rec.Class != "3B" || rec.Decision != "deny" {
		t.Errorf("record: route %s class %s decision %s, want juki 3B deny", rec.Route, rec.Class, rec.Decision)
	}
	if len(w.Seen()) != 0 {
		t.Fatalf("upstream saw %+v", w.Seen())
	}

	// The other way round: URL zaimu, Host juki. zaimu's policy and
	// zaimu's upstream, and the upstream is told zaimu.
	r = w.Raw("GET http://" + zaimu + "/public HTTP/1.1\r\nHost: " + juki + "\r\nCookie: __Host-sekisho=" + cookie + "\r\nAccept: text/html\r\nConnection: close\r\n\r\n")
	if r.Status != 200 {
		t.Fatalf("absolute-form zaimu with Host juki: %d %.200s", r.Status, r.Body)
	}
	id := rid(t, r)
	rec = decisionRecord(t, w, id)
	seen, ok := seenByID(w, id)
	if !ok {
		t.Fatal("not forwarded")
	}
	if rec.Route != "zaimu" || rec.Host != zaimu || rec.Class != "2" {
		t.Errorf("record: route %s host %s class %s", rec.Route, rec.Host, rec.Class)
	}
	if seen.Header.Get("X-Forwarded-Host") != zaimu || seen.Header.Get("X-Sekisho-Class") != "2" || seen.Path != "/public" {
		t.Errorf("upstream got host %q class %q path %q", seen.Header.Get("X-Forwarded-Host"), seen.Header.Get("X-Sekisho-Class"), seen.Path)
	}

	// An absolute URL naming an unknown host is 404, whatever Host says.
	r = w.Raw("GET http://evil.example/public HTTP/1.1\r\nHost: " + zaimu + "\r\nCookie: __Host-sekisho=" + cookie + "\r\nConnection: close\r\n\r\n")
	if r.Status != http.StatusNotFound {
		t.Errorf("absolute-form unknown host: %d", r.Status)
	}
	decisionRecord(t, w, rid(t, r))

	// A path smuggled into the authority part.
	r = w.Raw("GET http://" + zaimu + "@" + juki + "/records HTTP/1.1\r\nHost: " + zaimu + "\r\nCookie: __Host-sekisho=" + cookie + "\r\nConnection: close\r\n\r\n")
	if r.Status == 200 {
		t.Errorf("absolute-form with userinfo was served")
	}
	if len(w.Seen()) != 1 {
		t.Errorf("upstream saw %d requests, want 1", len(w.Seen()))
	}
}

// TestSessionCookieNeverUpstream: the session cookie is removed however the
// client packs its cookies (a compromised or curious upstream must never
// get a replayable session), and other cookies pass unchanged.
func TestSessionCookieNeverUpstream(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	tok := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	for _, hdrs := range [][]string{
		{"Cookie: a=1;__Host-sekisho=" + tok + ";b=2"},
		{"Cookie: a=1", "Cookie: __Host-sekisho=" + tok},
		{"Cookie: __Host-sekisho=" + tok + "; __Host-sekisho=" + tok},
		{"Cookie:  __Host-sekisho=" + tok + " ;a=1"},
	} {
		r := w.Raw(raw("GET", "/public", zaimu, "", hdrs...))
		if r.Status != 200 {
			t.Errorf("%q: %d", hdrs, r.Status)
			continue
		}
		s, ok := seenByID(w, rid(t, r))
		if !ok {
			t.Fatal("not forwarded")
		}
		for _, c := range s.Header.Values("Cookie") {
			if strings.Contains(c, tok[:20]) || strings.Contains(c, "__Host-sekisho") {
				t.Errorf("%q: upstream got Cookie %q", hdrs, c)
			}
		}
		if a := s.Header.Get("X-Sekisho-Assertion"); strings.Contains(a, tok) {
			t.Error("the cookie travelled inside another header")
		}
	}
	// Over HTTP/2, where a client may send one cookie field per cookie.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: w.CAPool, ServerName: zaimu}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	req := getReq(w, zaimu, "/public", tok)
	req.Header.Add("Cookie", "z=9")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("h2: %s %d", resp.Proto, resp.StatusCode)
	}
	s, _ := seenByID(w, resp.Header.Get("X-Request-Id"))
	if c := strings.Join(s.Header.Values("Cookie"), "; "); strings.Contains(c, "__Host-sekisho") || !strings.Contains(c, "z=9") {
		t.Errorf("h2: upstream Cookie %q", c)
	}
}
