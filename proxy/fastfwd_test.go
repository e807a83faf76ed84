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
	"time"

	"github.com/google/go-cmp/cmp"

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

// TestFastForwardUpstreamHeadDifferential: for heads full of what the
// gateway must not pass on (its own namespace, forwarding headers, a
// forged request id, hop-by-hop fields and fields named in Connection,
// its session cookie among others, Te), the upstream receives the same
// header fields from the fast path (fastForward, which writes the head
// itself) as from net/http's path (httputil.ReverseProxy with
// upstreamHeaders). Header order is not compared (neither path keeps
// one), and the request id, which differs by nature, only for its shape.
func TestFastForwardUpstreamHeadDifferential(t *testing.T) {
	type seenReq struct {
		target, host string
		header       []string
	}
	got := make(chan seenReq, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var hs []string
		for k, vv := range r.Header {
			if k == "X-Request-Id" {
				if len(vv) != 1 || len(vv[0]) != 16 {
					hs = append(hs, fmt.Sprintf("%s: bad %q", k, vv))
				} else {
					hs = append(hs, k+": <id>")
				}
				continue
			}
			for _, v := range vv {
				hs = append(hs, fmt.Sprintf("%s: %q", k, v))
			}
		}
		slices.Sort(hs)
		got <- seenReq{r.RequestURI, r.Host, hs}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	const host = "Host: zaimu.example.lg.jp\r\n"
	cases := map[string]string{
		"session cookie only": "Cookie: __Host-sekisho=token\r\n",
		"hygiene": "X-Sekisho-User: admin\r\nx_sekisho_roles: x\r\nX-SEKISHO-ASSERTION: forged\r\n" +
			"X-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Uri: /admin\r\n" +
			"Forwarded: for=10.9.9.9\r\nX-Real-Ip: 10.9.9.9\r\nX-Http-Method-Override: DELETE\r\nX-Request-Id: forged\r\n" +
			"Keep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\n" +
			"Cookie: a=1; __Host-sekisho=token; b=2\r\nUser-Agent: agent/1\r\nAccept: */*\r\n",
		"fields named in Connection":  "Connection: X-Foo, Keep-Alive\r\nX-Foo: 1\r\nX-Bar: 2\r\nKeep-Alive: 5\r\nCookie: __Host-sekisho=token\r\n",
		"Connection names gateway's":  "Connection: X-Request-Id, x-forwarded-for, User-Agent\r\nUser-Agent: ua\r\nCookie: __Host-sekisho=token\r\n",
		"Connection keep-alive":       "Connection: keep-alive\r\nCookie: __Host-sekisho=token\r\n",
		"Te trailers":                 "Te: trailers, deflate\r\nCookie: __Host-sekisho=token\r\n",
		"Te without trailers":         "Te: gzip\r\nTrailer: X-T\r\nUpgrade-Insecure-Requests: 1\r\nCookie: __Host-sekisho=token\r\n",
		"two cookie lines":            "Cookie: a=1\r\nCookie: __Host-sekisho=token; c=3\r\n",
		"no cookie left":              "Cookie:  __Host-sekisho=token ;  \r\n",
		"empty user agent":            "User-Agent: \r\nCookie: __Host-sekisho=token\r\n",
		"two user agents":             "User-Agent: a\r\nUser-Agent: b\r\nCookie: __Host-sekisho=token\r\n",
		"pragma and repeated headers": "Pragma: no-cache\r\nAccept: a\r\nAccept: b\r\nX-Sekisho: x\r\nCookie: __Host-sekisho=token\r\n",
	}
	results := map[string]map[string]seenReq{}
	for _, mode := range []string{"true", "false"} {
		addr := startAuthnGateway(t, mode, up.URL, fakeAuthn{user: "u1"})
		results[mode] = map[string]seenReq{}
		for name, lines := range cases {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "GET /p?q=1 HTTP/1.1\r\n%s%s\r\n", host, lines)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			c.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("fast_path=%s, %s: %v %v", mode, name, resp, err)
			}
			select {
			case s := <-got:
				results[mode][name] = s
			case <-time.After(10 * time.Second):
				t.Fatalf("fast_path=%s, %s: the upstream saw nothing", mode, name)
			}
		}
	}
	for name := range cases {
		fast, net := results["true"][name], results["false"][name]
		if d := cmp.Diff(net, fast, cmp.AllowUnexported(seenReq{})); d != "" {
			t.Errorf("%s: the upstream's view differs (-net/http +fast path):\n%s", name, d)
		}
		if !slices.Contains(fast.header, `X-Sekisho-User: "u1"`) {
			t.Errorf("%s: no identity upstream: %q", name, fast.header)
		}
	}
}
