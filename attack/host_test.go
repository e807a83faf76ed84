package attack

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/apptest"
)

// TestHostVariants: spellings of a route's host resolve to that route (and
// are told upstream in one canonical form), other hosts are 404, and the
// TLS server name never chooses the route — Host does, so a connection
// made for zaimu cannot borrow zaimu's rules for juki (domain fronting).
func TestHostVariants(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	for _, c := range []struct {
		host  string
		route string // "" = must be 404 or 400
	}{
		{"ZAIMU.GW.EXAMPLE.LG.JP", "zaimu"},
		{zaimu + ".", "zaimu"},
		{zaimu + ":8443", "zaimu"},
		{"zaimu.gw.example.lg.jp.evil.example", ""},
		{"evil.example#" + zaimu, ""},
		{"evil.example/" + zaimu, ""},
		{zaimu + "@evil.example", ""},
		{"zaimu", ""},
		{"[::1]", ""},
		{"127.0.0.1", ""},
	} {
		r := w.Raw(raw("GET", "/public", c.host, cookie))
		if c.route == "" {
			if r.Status != http.StatusNotFound && r.Status != http.StatusBadRequest {
				t.Errorf("Host %q: %d", c.host, r.Status)
			}
			continue
		}
		if r.Status != 200 {
			t.Errorf("Host %q: %d", c.host, r.Status)
			continue
		}
		id := rid(t, r)
		rec := decisionRecord(t, w, id)
		s, _ := seenByID(w, id)
		if rec.Route != c.route || rec.Host != zaimu || s.Header.Get("X-Forwarded-Host") != zaimu {
			t.Errorf("Host %q: route %s host %s, upstream told %q", c.host, rec.Route, rec.Host, s.Header.Get("X-Forwarded-Host"))
		}
	}

	// A Host whose port is not a number is not a valid authority (RFC 3986
	// §3.2.3). Accepted, it reaches upstreams with preserve_host as is and
	// ends up in login rd values.
	t.Run("non-numeric port", func(t *testing.T) {
		var accepted []string
		for _, h := range []string{zaimu + ":evil", zaimu + ":", zaimu + ":0x1bb"} {
			if r := w.Raw(raw("GET", "/public", h, cookie)); r.Status < 400 {
				accepted = append(accepted, h)
			}
		}
		if len(accepted) > 0 {
			t.Errorf("GAP (fixed; regression): Host values with a non-numeric or empty port are routed: %q (proxy/gateway.go hostOnly cuts at the last colon without checking the port)", accepted)
		}
	})

	// TLS made for zaimu (SNI), Host juki: juki's rules (device
	// certificate required) apply.
	r := do(t, client(t, w, zaimu, nil), getReq(w, juki, "/records", w.Login("sato", apptest.UV, time.Minute, "", "")))
	if r.Status != http.StatusForbidden {
		t.Errorf("SNI zaimu, Host juki: %d", r.Status)
	}
	if rec := decisionRecord(t, w, rid(t, r)); rec.Route != "juki" {
		t.Errorf("SNI zaimu, Host juki: recorded on route %s", rec.Route)
	}
	for _, s := range w.Seen() {
		if s.Header.Get("X-Sekisho-Class") == "3B" {
			t.Errorf("a 3B request reached the upstream: %s", s.Path)
		}
	}
}

// TestAuditRedaction: configured secret query values never reach the
// trail (they still reach the upstream, which needs them).
func TestAuditRedaction(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	r := w.Raw(raw("GET", "/public?token=S3CRET-TOKEN&my_number=123456789012&page=2", zaimu, cookie))
	if r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	id := rid(t, r)
	for _, rec := range mustRecords(t, w, id) {
		if strings.Contains(rec.Path, "S3CRET") || strings.Contains(rec.Path, "123456789012") {
			t.Errorf("secret query value in the audit record: %q", rec.Path)
		}
		if !strings.Contains(rec.Path, "page=2") {
			t.Errorf("ordinary query value lost: %q", rec.Path)
		}
	}
	if s, ok := seenByID(w, id); !ok || !strings.Contains(s.RawQuery, "token=S3CRET-TOKEN") {
		t.Errorf("upstream query %q", s.RawQuery)
	}
}
