package proxy

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/sekisho/sekisho/reqctx"
)

// refreshingAuthn authenticates everyone and reissues the session cookie
// on every answer, as authn's Refresh does when a session slides.
type refreshingAuthn struct{ fakeAuthn }

const refreshedCookie = "__Host-sekisho=refreshed; Path=/; HttpOnly; Secure"

func (a refreshingAuthn) Authenticate(w http.ResponseWriter, r *http.Request, info *reqctx.Info) error {
	w.Header().Add("Set-Cookie", refreshedCookie)
	return a.fakeAuthn.Authenticate(w, r, info)
}

// TestFastForwardKeepsGatewayHeaders: whatever the upstream answers, the
// headers the gateway set before forwarding (the request id, a refreshed
// session cookie) reach the client, and the upstream can neither remove
// them (naming them in Connection, or with its own sekisho cookie and
// request id) nor plant its own. Both response-head paths of the fast
// path (directHead for a length and a type, http.Header for a streamed
// answer) and net/http's path must agree.
func TestFastForwardKeepsGatewayHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Set-Cookie", "__Host-sekisho=planted; Path=/")
		h.Add("Set-Cookie", "app=1; Path=/")
		h.Set("X-Request-Id", "upstream-id")
		if r.URL.Path == "/named" {
			h.Set("Connection", "X-Request-Id, Set-Cookie")
		}
		h.Set("Content-Type", "text/plain")
		if r.URL.Path == "/stream" {
			io.WriteString(w, "part 1;")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part 2")
			return
		}
		h.Set("Content-Length", "2")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	for _, mode := range []string{"true", "false"} {
		t.Run("fast_path="+mode, func(t *testing.T) {
			addr := startAuthnGateway(t, mode, up.URL, refreshingAuthn{fakeAuthn{user: "u1"}})
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for _, path := range []string{"/plain", "/named", "/stream"} {
				fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: zaimu.example.lg.jp\r\nCookie: __Host-sekisho=token\r\n\r\n", path)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				cookies := resp.Header.Values("Set-Cookie")
				wantCookies := []string{refreshedCookie, "app=1; Path=/"}
				if path == "/named" {
					// The upstream named Set-Cookie in Connection: its own
					// cookies go, the gateway's stays.
					wantCookies = []string{refreshedCookie}
				}
				slices.Sort(cookies)
				slices.Sort(wantCookies)
				ids := resp.Header.Values("X-Request-Id")
				if resp.StatusCode != 200 || !slices.Equal(cookies, wantCookies) || len(ids) != 1 || ids[0] == "upstream-id" || ids[0] == "" {
					t.Errorf("%s: status %d, Set-Cookie %q (want %q), X-Request-Id %q, body %q", path, resp.StatusCode, cookies, wantCookies, ids, body)
				}
			}
		})
	}
}

// startAuthnGateway serves one authenticated route (zaimu.example.lg.jp,
// class 2, every request allowed) to upstream over plain HTTP, with
// server.fast_path set to fastPath, and returns its address.
func startAuthnGateway(t *testing.T, fastPath, upstream string, a Authenticator) string {
	t.Helper()
	cfg := loadConfig(t, t.TempDir(), fmt.Sprintf(`
server:
  http_listen: "127.0.0.1:0"
  fast_path: %s
webauthn:
  rp_id: example.lg.jp
zones:
  chonai: [127.0.0.0/8]
routes:
  - name: zaimu
    host: zaimu.example.lg.jp
    upstream: %s
    segment: lgwan
    class: "2"
`, fastPath, upstream))
	allow := verdictFunc(func(*reqctx.Info) Verdict { return Verdict{Effect: "allow", Rule: "test", Enforced: true} })
	gw, err := New(cfg, WithRecorder(&memRecorder{}), WithAuthenticator(a),
		WithDecider(allow), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(gw, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := serveListeners(t, srv)
	return addrs[len(addrs)-1]
}

// TestFastForwardIdentityHeaderInjection: an identity value with CR or LF
// (a user id from the directory, say) cannot add a header line upstream:
// on both paths the request is not forwarded and the client gets 502 (on
// the net/http path http.Transport refuses the value).
func TestFastForwardIdentityHeaderInjection(t *testing.T) {
	var got http.Header
	var mu sync.Mutex
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	for _, mode := range []string{"true", "false"} {
		t.Run("fast_path="+mode, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			addr := startAuthnGateway(t, mode, up.URL, fakeAuthn{user: "u1\r\nX-Sekisho-Roles: admin\nX-Injected: 1"})
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: zaimu.example.lg.jp\r\nCookie: __Host-sekisho=token\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if resp.StatusCode != http.StatusBadGateway || got != nil {
				t.Errorf("status %d, upstream saw %v; want 502 and nothing forwarded", resp.StatusCode, got)
			}
		})
	}
}

// TestHeadLine: the upstream head's lines are written as given, and a
// name or value with CR or LF turns ok false instead of splitting a line.
func TestHeadLine(t *testing.T) {
	b, ok := headLine(nil, "X-A", "1 2", true)
	if !ok || string(b) != "X-A: 1 2\r\n" {
		t.Fatalf("got %q %t", b, ok)
	}
	for _, kv := range [][2]string{{"X-A", "a\r\nX-B: b"}, {"X-A", "a\nb"}, {"X-A", "a\rb"}, {"X-A\r\nX-B", "b"}} {
		if _, ok := headLine(b, kv[0], kv[1], true); ok {
			t.Errorf("%q: %q accepted", kv[0], kv[1])
		}
	}
	if _, ok := headLine(b, "X-C", "fine", false); ok {
		t.Error("ok came back true after a refused line")
	}
}
