package attack

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/apptest"
)

// upgradingUpstream answers any request that asks for a protocol upgrade
// with 101 and then reads whatever arrives on the tunnel as HTTP/1.1
// requests, recording their paths: what a server with h2c or any other
// upgrade support would do.
type upgradingUpstream struct {
	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex
	upgrades []string // Upgrade header values seen
	tunneled []string // request lines read inside a tunnel
}

func newUpgradingUpstream(t *testing.T) *upgradingUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upgradingUpstream{ln: ln}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				up := req.Header.Get("Upgrade")
				if up == "" {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
					return
				}
				u.mu.Lock()
				u.upgrades = append(u.upgrades, up)
				u.mu.Unlock()
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+up+"\r\n\r\n")
				for {
					in, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					u.mu.Lock()
					u.tunneled = append(u.tunneled, in.Method+" "+in.URL.Path+" user="+in.Header.Get("X-Sekisho-User"))
					u.mu.Unlock()
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ntunneled!")
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); u.wg.Wait() })
	return u
}

// TestUpgradeSmuggling: the h2c-smuggling class (BishopFox 2020; also
// plain "Upgrade: anything"): a client asks for a protocol upgrade on an
// allowed path; if the proxy forwards the upgrade and the upstream agrees,
// every later request on that connection goes through the tunnel without
// the gateway deciding or recording it. Only WebSocket upgrades (needed by
// apps) may be forwarded; h2c and unknown protocols must not be.
func TestUpgradeSmuggling(t *testing.T) {
	up := newUpgradingUpstream(t)
	routes := "  - {name: zaimu, host: " + zaimu + ", upstream: \"http://" + up.ln.Addr().String() + "\", segment: lgwan, class: \"2\", paths: [{prefix: /admin, class: \"3A\", action: admin}]}\n"
	w := apptest.Start(t, apptest.Options{Routes: routes, Policy: "condition, 庁内, zone=chonai\nallow, *, class:2, read|write, 庁内\n"})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")

	for _, c := range []struct{ name, headers string }{
		{"h2c", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"},
		{"unknown protocol", "Connection: Upgrade\r\nUpgrade: tunnel/1.0\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			up.mu.Lock()
			nt, nu := len(up.tunneled), len(up.upgrades)
			up.mu.Unlock()
			conn, err := net.Dial("tcp", w.HTTP)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, "GET /public HTTP/1.1\r\nHost: "+zaimu+"\r\nCookie: __Host-sekisho="+cookie+"\r\n"+c.headers+"\r\n")
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusSwitchingProtocols {
				// Inside the tunnel: a request sekisho never sees.
				io.WriteString(conn, "GET /admin/secret HTTP/1.1\r\nHost: "+zaimu+"\r\n\r\n")
				if r2, err := http.ReadResponse(br, nil); err == nil {
					r2.Body.Close()
				}
			}
			up.mu.Lock()
			tunneled := append([]string(nil), up.tunneled[nt:]...)
			upgrades := append([]string(nil), up.upgrades[nu:]...)
			up.mu.Unlock()
			if len(tunneled) > 0 {
				t.Errorf("VULNERABILITY (fixed; regression): %q upgrade forwarded (upstream saw Upgrade %q, answered 101) and a request for %q went through the tunnel undecided and unaudited; proxy must forward only WebSocket upgrades (httputil.ReverseProxy forwards any Upgrade type)", c.name, upgrades, tunneled)
			}
			if len(upgrades) > 0 {
				t.Errorf("upstream was asked to upgrade to %q", upgrades)
			}
		})
	}
}

// TestMethodOverride: a GET decided as "read" must not become a write at
// an upstream that honours method-override headers (Rails, ASP.NET, many
// Express apps): with read-only access, such headers are not forwarded.
func TestMethodOverride(t *testing.T) {
	w := apptest.Start(t, apptest.Options{Policy: "condition, 庁内, zone=chonai\nallow, *, class:2, read, 庁内\n"})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	if r := w.Raw(raw("POST", "/public", zaimu, cookie, "Content-Length: 0")); r.Status != http.StatusForbidden {
		t.Fatalf("control: a POST with read-only access: %d", r.Status)
	}
	var leaked []string
	for _, h := range []string{"X-HTTP-Method-Override: DELETE", "X-HTTP-Method: DELETE", "X-Method-Override: DELETE"} {
		r := w.Raw(raw("GET", "/public", zaimu, cookie, h))
		if r.Status != 200 {
			continue
		}
		id := rid(t, r)
		decisionRecord(t, w, id)
		if s, ok := seenByID(w, id); ok {
			name, _, _ := strings.Cut(h, ":")
			if s.Header.Get(name) != "" {
				leaked = append(leaked, name)
			}
		}
	}
	if len(leaked) > 0 {
		t.Errorf("VULNERABILITY (fixed; regression): method-override headers %v reach the upstream on a request decided as %q; a read-only user can make an overriding upstream perform a write. proxy should drop them (or decide on the overridden method)", leaked, "read")
	}
}

// TestWebSocketOrigin: all route hosts are one site
// (*.gw.example.lg.jp), so SameSite=Lax sends the session cookie on a
// WebSocket handshake started by a page of another route. A page of a
// compromised app on bunsho could then open zaimu's WebSocket as the
// user and read it (WebSockets have no CORS). The gateway should refuse
// handshakes whose Origin is not the route's own host.
func TestWebSocketOrigin(t *testing.T) {
	up := newUpgradingUpstream(t)
	routes := "  - {name: zaimu, host: " + zaimu + ", upstream: \"http://" + up.ln.Addr().String() + "\", segment: lgwan, class: \"2\"}\n"
	w := apptest.Start(t, apptest.Options{Routes: routes, Policy: "condition, 庁内, zone=chonai\nallow, *, class:2, read|write, 庁内\n"})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	handshake := func(origin string) int {
		return rawStatus(t, w.HTTP, "GET /ws HTTP/1.1\r\nHost: "+zaimu+"\r\nCookie: __Host-sekisho="+cookie+
			"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: "+origin+"\r\n\r\n")
	}
	// Control: the route's own origin may open it.
	if st := handshake("https://" + zaimu); st != http.StatusSwitchingProtocols {
		t.Fatalf("same-origin WebSocket: %d", st)
	}
	var open []string
	for _, origin := range []string{"https://" + bunsho, "https://evil.example", "null"} {
		if st := handshake(origin); st == http.StatusSwitchingProtocols {
			open = append(open, origin)
		}
	}
	if len(open) > 0 {
		t.Errorf("GAP (fixed; regression): WebSocket handshakes with a foreign Origin %q are forwarded with the user's identity; with every route on one site, a page of another route can open and read this route's WebSocket as the user (cross-site WebSocket hijacking within the gateway's site). proxy could require Origin to be the route's host on upgrades; until then each app must check Origin", open)
	}
}
