package attack

import (
	"net/http"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/apptest"
)

// TestForwardedForBehindProxy: behind a trusted load balancer (here
// 127.0.0.1), the client address is the right-most untrusted entry of
// X-Forwarded-For, so a client cannot choose its zone by prepending an
// office address (the left-most-XFF bug of many gateways). Office zone:
// 127.0.0.0/8; the real client 203.0.113.9 is outside and must be denied.
func TestForwardedForBehindProxy(t *testing.T) {
	w := apptest.Start(t, apptest.Options{Server: "trusted_proxies: [127.0.0.1/32]"})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	for _, c := range []struct {
		name string
		xff  []string
		ip   string
	}{
		{"client only", []string{"203.0.113.9"}, "203.0.113.9"},
		{"office address prepended", []string{"127.0.0.2, 203.0.113.9"}, "203.0.113.9"},
		{"office address prepended, two fields", []string{"127.0.0.2", "203.0.113.9"}, "203.0.113.9"},
		{"garbage prepended", []string{"not-an-ip, 203.0.113.9"}, "203.0.113.9"},
		{"IPv4-mapped IPv6", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"address with port (Azure Application Gateway style)", []string{"203.0.113.9:50123"}, "203.0.113.9"},
		{"bracketed IPv6 with port", []string{"[2001:db8::9]:50123"}, "2001:db8::9"},
	} {
		t.Run(c.name, func(t *testing.T) {
			hdrs := []string{}
			for _, v := range c.xff {
				hdrs = append(hdrs, "X-Forwarded-For: "+v)
			}
			r := w.Raw(raw("GET", "/public", zaimu, cookie, hdrs...))
			rec := decisionRecord(t, w, rid(t, r))
			if rec.IP != c.ip || r.Status == http.StatusOK {
				if c.name == "address with port (Azure Application Gateway style)" || c.name == "bracketed IPv6 with port" {
					t.Fatalf("VULNERABILITY (fixed; regression; configuration-dependent, fails open): X-Forwarded-For entry %q from a trusted proxy is not parsed (ip:port), so the client is taken to be the proxy itself (%s, zone %s) and gets the proxy's zone: status %d. Behind a load balancer that appends the port (Azure Application Gateway) every client lands in the proxy's zone; proxy/headers.go clientIP should parse host:port and treat anything else as an unknown, zone-less address instead of falling back to the peer", c.xff, rec.IP, rec.Zone, r.Status)
				}
				t.Errorf("XFF %q: recorded ip %s zone %s, status %d; want ip %s and a denial", c.xff, rec.IP, rec.Zone, r.Status, c.ip)
			}
			if _, ok := seenByID(w, rec.RequestID); ok {
				t.Error("forwarded")
			}
		})
	}
	// Control: the load balancer's own traffic (no XFF) is in the office
	// zone and allowed, so the denials above are about the address.
	if r := w.Raw(raw("GET", "/public", zaimu, cookie)); r.Status != 200 {
		t.Fatalf("control: %d", r.Status)
	}
}
