package proxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/reqctx"
)

// seen is what an upstream received.
type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (s *seen) add(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r.Clone(context.Background()))
}

func (s *seen) last(t *testing.T) *http.Request {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("upstream saw no request")
	}
	return s.reqs[len(s.reqs)-1]
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// memRecorder keeps audit entries in memory; the real trail is tested in
// package audit and end to end in cmd/sekisho.
type memRecorder struct {
	mu      sync.Mutex
	entries []Entry
	fail    error
}

func (m *memRecorder) Record(ctx context.Context, e *Entry, durable bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	c := *e
	info := *e.Info
	c.Info = &info
	m.entries = append(m.entries, c)
	return nil
}

func (m *memRecorder) Healthy() error { return m.fail }

// find returns the entries of one request, waiting briefly: the outcome
// record is written after the response has been sent.
func (m *memRecorder) find(reqID string) []Entry {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if e := m.findNow(reqID); len(e) > 0 {
			return e
		}
	}
	return nil
}

func (m *memRecorder) findNow(reqID string) []Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Entry
	for _, e := range m.entries {
		if e.Info.RequestID == reqID {
			out = append(out, e)
		}
	}
	return out
}

// fixture is a gateway in front of one public upstream, loaded from YAML
// through config.Load like a real deployment.
type fixture struct {
	gw       *Gateway
	srv      *httptest.Server
	upstream *httptest.Server
	seen     *seen
	audit    *memRecorder
	// upClosed counts the upstream's connections that have closed.
	upClosed *atomic.Int32
}

// loadConfig writes yaml as dir/sekisho.yaml next to an empty policy and
// loads it through config.Load, as a deployment would.
func loadConfig(tb testing.TB, dir, yaml string) *config.Config {
	tb.Helper()
	path := filepath.Join(dir, "sekisho.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.csv"), nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatalf("config.Load: %v", err)
	}
	return cfg
}

func newFixture(t *testing.T, upstream http.Handler, extra string, opts ...Option) *fixture {
	t.Helper()
	sn := &seen{}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sn.add(r)
		upstream.ServeHTTP(w, r)
	}))
	upClosed := &atomic.Int32{}
	up.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			upClosed.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`
server:
  http_listen: "127.0.0.1:0"
  trusted_proxies: [10.0.0.0/24]
webauthn:
  rp_id: example.lg.jp
zones:
  chonai: [127.0.0.0/8]
classes:
  "3B": {require: [passkey_uv], audit: sync}
  "3A": {require: [passkey_uv], audit: sync}
routes:
  - name: web
    host: web.example.lg.jp
    upstream: %s/base
    segment: internet
    class: "1"
    public: true
    timeout: 300ms
%s`, up.URL, extra)
	cfg := loadConfig(t, dir, yaml)
	rec := &memRecorder{}
	gw, err := New(cfg, append([]Option{WithRecorder(rec), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return &fixture{gw: gw, srv: srv, upstream: up, seen: sn, audit: rec, upClosed: upClosed}
}

// do sends a raw HTTP/1.1 request line and headers, so tests control the
// exact bytes (paths that net/http's client would clean).
func (f *fixture) raw(t *testing.T, target string, headers ...string) (int, http.Header, string) {
	t.Helper()
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\n", target)
	hasHost := false
	for _, h := range headers {
		if strings.HasPrefix(strings.ToLower(h), "host:") {
			hasHost = true
		}
		b.WriteString(h + "\r\n")
	}
	if !hasHost {
		b.WriteString("Host: web.example.lg.jp\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func okHandler(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "upstream:"+r.URL.Path) }

func TestPathHygieneEndToEnd(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(okHandler), "")
	tests := []struct {
		target   string
		status   int
		upstream string // the path the upstream must receive
	}{
		{"/public/../admin", 200, "/base/admin"},
		{"/public/%2e%2e/admin", 200, "/base/admin"},
		{"//admin", 200, "/base/admin"},
		{"/a/./b//c", 200, "/base/a/b/c"},
		{"/%E8%B2%A1%E5%8B%99/x", 200, "/base/財務/x"},
		{"/admin;x", 200, "/base/admin;x"},
		{"/a%3Fb?q=1", 200, "/base/a?b"},
		{"http://web.example.lg.jp/abs/../form", 200, "/base/form"},
		{"/public%2fadmin", 400, ""},
		{"/public%5cadmin", 400, ""},
		{"/public\\admin", 400, ""},
		{"/a%00b", 400, ""},
		{"/%c0%ae%c0%ae/admin", 400, ""},
		{"/admin.", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			before := f.seen.count()
			status, h, _ := f.raw(t, tt.target)
			if status != tt.status {
				t.Fatalf("status = %d, want %d", status, tt.status)
			}
			if tt.status != 200 {
				if f.seen.count() != before {
					t.Fatalf("a refused request reached the upstream")
				}
				entries := f.audit.find(h.Get("X-Request-Id"))
				if len(entries) != 1 || entries[0].Decision != "error" || entries[0].Status != 400 {
					t.Fatalf("audit entries for refused request = %+v", entries)
				}
				return
			}
			if got := f.seen.last(t).URL.Path; got != tt.upstream {
				t.Errorf("upstream path = %q, want %q", got, tt.upstream)
			}
		})
	}
}

func TestHeaderHygieneEndToEnd(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(okHandler), "")
	status, _, _ := f.raw(t, "/x",
		"X-Sekisho-User: admin",
		"x-sekisho-roles: admin",
		"X_Sekisho_Device: PC-0001",
		"X-SEKISHO-ASSERTION: forged",
		"X-Forwarded-For: 10.9.9.9",
		"X-Forwarded-Host: evil.example",
		"X-Forwarded-Proto: https",
		"X-Forwarded-Uri: /admin",
		"Forwarded: for=10.9.9.9",
		"Connection: X-Request-Id, Keep-Alive",
		"Keep-Alive: timeout=5",
		"Cookie: a=1; __Host-sekisho=stolen",
		"Proxy-Authorization: Basic eA==",
	)
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	got := f.seen.last(t)
	for k := range got.Header {
		if isSekishoHeader(k) {
			t.Errorf("upstream received client-sent %s", k)
		}
	}
	for _, k := range []string{"Keep-Alive", "Proxy-Authorization", "X-Forwarded-Uri", "Forwarded"} {
		if v := got.Header.Get(k); v != "" {
			t.Errorf("upstream received %s: %q", k, v)
		}
	}
	if v := got.Header.Get("X-Forwarded-For"); v != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the real peer 127.0.0.1", v)
	}
	if v := got.Header.Get("X-Forwarded-Host"); v != "web.example.lg.jp" {
		t.Errorf("X-Forwarded-Host = %q", v)
	}
	if v := got.Header.Get("X-Forwarded-Proto"); v != "http" {
		t.Errorf("X-Forwarded-Proto = %q", v)
	}
	// "Connection: X-Request-Id" must not strip the id sekisho sets.
	if v := got.Header.Get("X-Request-Id"); len(v) != 16 {
		t.Errorf("X-Request-Id = %q", v)
	}
	// Only the sekisho cookie is removed (none is configured without authn,
	// so the cookie survives here; see TestCookieStripped).
}

func TestUnknownHostAndReserved(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(okHandler), "")
	status, h, body := f.raw(t, "/", "Host: other.example.lg.jp", "Accept: text/html")
	if status != 404 {
		t.Fatalf("unknown host: status %d", status)
	}
	if !strings.Contains(body, "このアドレスに対応するシステムはありません") || !strings.Contains(body, h.Get("X-Request-Id")) {
		t.Errorf("404 page lacks the Japanese message or request id:\n%s", body)
	}
	status, _, body = f.raw(t, "/", "Host: other.example.lg.jp", "Accept: text/html", "Accept-Language: en-US,en;q=0.9")
	if status != 404 || !strings.Contains(body, "No system is configured") {
		t.Errorf("English 404 page: %d %s", status, body)
	}
	before := f.seen.count()
	for _, p := range []string{"/.sekisho/login", "/.sekisho/", "/x/../.sekisho/me", "/.well-known/sekisho/jwks.json"} {
		f.raw(t, p)
	}
	if f.seen.count() != before {
		t.Errorf("a /.sekisho/ path was forwarded upstream")
	}
}

func TestStreamingLargeBodyBoundedMemory(t *testing.T) {
	const size = 256 << 20 // 256 MiB each way; a buffering proxy would show it in the heap
	var got atomic.Int64
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n, _ := io.Copy(io.Discard, r.Body)
			got.Store(n)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		io.CopyN(w, zeroReader{}, size)
	}), "")
	var peak uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak {
					peak = ms.HeapInuse
				}
			}
		}
	}()
	// Upload, then download, as two requests through the gateway.
	req, _ := http.NewRequest("POST", f.srv.URL+"/upload", io.LimitReader(zeroReader{}, size))
	req.Host = "web.example.lg.jp"
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	req, _ = http.NewRequest("GET", f.srv.URL+"/download", nil)
	req.Host = "web.example.lg.jp"
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	close(done)
	<-sampled
	if got := got.Load(); got != size || n != size {
		t.Fatalf("upstream got %d bytes, client got %d, want %d each", got, n, size)
	}
	if peak > 64<<20 {
		t.Errorf("peak heap %d MiB while streaming 256 MiB each way: the body was buffered", peak>>20)
	}
	t.Logf("peak heap in use while streaming 2×256 MiB: %d MiB", peak>>20)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestServerSentEventsFlushImmediately(t *testing.T) {
	release := make(chan struct{})
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: second\n\n")
	}), "")
	defer close(release)
	req, _ := http.NewRequest("GET", f.srv.URL+"/events", nil)
	req.Host = "web.example.lg.jp"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(resp.Body).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if s != "data: first\n" {
			t.Fatalf("first event = %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event was not flushed through the gateway")
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		typ, msg, err := c.Read(r.Context())
		if err != nil {
			return
		}
		c.Write(r.Context(), typ, append([]byte("echo:"), msg...))
	}), "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(f.srv.URL, "http")+"/ws", &websocket.DialOptions{Host: "web.example.lg.jp"})
	if err != nil {
		t.Fatalf("dial through gateway: %v", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("こんにちは")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil || string(msg) != "echo:こんにちは" {
		t.Fatalf("read %q, %v", msg, err)
	}
}

func TestUpstreamTimeoutAndDown(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/base/slow" {
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "ok")
	}), "")
	status, _, body := f.raw(t, "/slow", "Accept: text/html")
	if status != http.StatusGatewayTimeout || !strings.Contains(body, "応答が時間内にありませんでした") {
		t.Fatalf("slow upstream: %d %s", status, body)
	}
	f.upstream.Close()
	status, _, _ = f.raw(t, "/x")
	if status != http.StatusBadGateway {
		t.Fatalf("upstream down: %d, want 502", status)
	}
}

func TestRequestIDAndAuditOutcome(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(okHandler), "")
	status, h, body := f.raw(t, "/hello")
	if status != 200 {
		t.Fatal(status)
	}
	id := h.Get("X-Request-Id")
	if got := f.seen.last(t).Header.Get("X-Request-Id"); got != id {
		t.Errorf("upstream request id %q, response %q", got, id)
	}
	e := f.audit.find(id)
	if len(e) != 1 {
		t.Fatalf("entries = %+v", e)
	}
	if e[0].Decision != "allow" || e[0].Status != 200 || e[0].Bytes != int64(len(body)) || e[0].Info.Route != "web" || e[0].Info.Zone != "chonai" {
		t.Errorf("entry = %+v info=%+v", e[0], e[0].Info)
	}
}

func TestNonPublicWithoutAuthenticatorFailsClosed(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(okHandler), `
  - name: zaimu
    host: zaimu.example.lg.jp
    upstream: http://127.0.0.1:1
    segment: lgwan
    class: "2"
`)
	status, _, _ := f.raw(t, "/", "Host: zaimu.example.lg.jp")
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503 with no authenticator", status)
	}
}

// fakeAuthn authenticates everyone as one user, to test the gateway's side
// of the contract; package authn is tested against the real ceremonies.
type fakeAuthn struct{ user string }

func (a fakeAuthn) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "authn:"+r.URL.Path) })
}
func (a fakeAuthn) Authenticate(w http.ResponseWriter, r *http.Request, info *reqctx.Info) error {
	if a.user == "" {
		return ErrNoSession
	}
	info.User, info.Roles, info.AMR = a.user, []string{"zaimu"}, []string{"hwk", "uv"}
	return nil
}
func (a fakeAuthn) RequireLogin(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/.sekisho/login", http.StatusSeeOther)
}
func (a fakeAuthn) RequireStepUp(w http.ResponseWriter, r *http.Request, reasons []string) {
	http.Redirect(w, r, "/.sekisho/login?stepup=1", http.StatusSeeOther)
}
func (a fakeAuthn) Assertion(info *reqctx.Info) (string, error) {
	sum := sha256.Sum256([]byte(info.User + info.Route))
	return hex.EncodeToString(sum[:8]), nil
}
func (a fakeAuthn) CookieName() string { return "__Host-sekisho" }

type verdictFunc func(info *reqctx.Info) Verdict

func (f verdictFunc) Decide(ctx context.Context, info *reqctx.Info, now time.Time) Verdict {
	return f(info)
}

func TestEnforcementFlow(t *testing.T) {
	routes := `
  - name: zaimu
    host: zaimu.example.lg.jp
    upstream: %s
    segment: lgwan
    class: "2"
    paths: [{prefix: /export, class: "3B", action: export}]
  - name: shadow
    host: shadow.example.lg.jp
    upstream: %s
    segment: lgwan
    class: "2"
    mode: shadow
`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "user=%s assertion=%t cookie=%q", r.Header.Get("X-Sekisho-User"), r.Header.Get("X-Sekisho-Assertion") != "", r.Header.Get("Cookie"))
	}))
	defer up.Close()
	decide := verdictFunc(func(info *reqctx.Info) Verdict {
		switch {
		case info.Class == "3B":
			return Verdict{Effect: "stepup", Rule: "class:3B", Reasons: []string{"auth_too_old"}, Enforced: info.Mode != "shadow", AuditSync: true}
		case info.Route == "shadow":
			return Verdict{Effect: "deny", Rule: "policy.csv:3", Reasons: []string{"zone_not_allowed"}, Enforced: false}
		}
		return Verdict{Effect: "allow", Rule: "policy.csv:1", Enforced: true}
	})
	f := newFixture(t, http.HandlerFunc(okHandler), fmt.Sprintf(routes, up.URL, up.URL),
		WithAuthenticator(fakeAuthn{user: "yamada"}), WithDecider(decide))

	status, _, body := f.raw(t, "/ledger", "Host: zaimu.example.lg.jp", "Cookie: __Host-sekisho=tok; theme=dark", "X-Sekisho-User: admin")
	if status != 200 || body != `user=yamada assertion=true cookie="theme=dark"` {
		t.Fatalf("allowed request: %d %q", status, body)
	}
	status, h, _ := f.raw(t, "/export/all.csv", "Host: zaimu.example.lg.jp")
	if status != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "stepup=1") {
		t.Fatalf("step-up: %d %v", status, h)
	}
	e := f.audit.find(h.Get("X-Request-Id"))
	if len(e) != 1 || e[0].Decision != "stepup" || e[0].Info.Action != "export" || e[0].Info.Class != "3B" {
		t.Fatalf("step-up audit = %+v", e)
	}
	status, h, body = f.raw(t, "/x", "Host: shadow.example.lg.jp")
	if status != 200 || !strings.HasPrefix(body, "user=yamada") {
		t.Fatalf("shadow deny must forward: %d %q", status, body)
	}
	e = f.audit.find(h.Get("X-Request-Id"))
	if len(e) != 1 || e[0].Decision != "deny" || e[0].Enforced {
		t.Fatalf("shadow audit = %+v", e)
	}
	// /.sekisho/ goes to the authenticator, with the normalised path.
	_, _, body = f.raw(t, "/a/../.sekisho/me", "Host: zaimu.example.lg.jp")
	if body != "authn:/.sekisho/me" {
		t.Fatalf("reserved path body = %q", body)
	}
}

func TestAuditSyncFailsClosed(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(okHandler))
	defer up.Close()
	decide := verdictFunc(func(info *reqctx.Info) Verdict {
		return Verdict{Effect: "allow", Rule: "r", Enforced: true, AuditSync: info.Class == "3B"}
	})
	f := newFixture(t, http.HandlerFunc(okHandler), fmt.Sprintf(`
  - name: juki
    host: juki.example.lg.jp
    upstream: %s
    segment: mynumber
    class: "3B"
`, up.URL), WithAuthenticator(fakeAuthn{user: "sato"}), WithDecider(decide))
	f.audit.fail = fmt.Errorf("disk full")
	status, _, body := f.raw(t, "/", "Host: juki.example.lg.jp", "Accept: text/html")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "監査記録を保存できない") {
		t.Fatalf("unwritable trail: %d %s", status, body)
	}
}

func TestLoginRequired(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(okHandler), `
  - name: zaimu
    host: zaimu.example.lg.jp
    upstream: http://127.0.0.1:1
    segment: lgwan
    class: "2"
`, WithAuthenticator(fakeAuthn{}))
	status, h, _ := f.raw(t, "/", "Host: zaimu.example.lg.jp")
	if status != http.StatusSeeOther || h.Get("Location") != "/.sekisho/login" {
		t.Fatalf("no session: %d %v", status, h)
	}
	e := f.audit.find(h.Get("X-Request-Id"))
	if len(e) != 1 || e[0].Reasons[0] != "not_authenticated" {
		t.Fatalf("audit = %+v", e)
	}
}

// TestUpstreamConnections: body-less requests reuse one upstream
// connection (h1transport), uploads go through the fallback transport, and
// a reload closes the old routes' idle upstream connections at once
// instead of after their idle timeout.
func TestUpstreamConnections(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %d %s", r.Method, len(b), r.RemoteAddr)
	}), "")
	cl := &http.Client{Timeout: 10 * time.Second}
	// do returns the upstream connection's client address.
	do := func(method, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, f.srv.URL+"/x", strings.NewReader(body))
		if body == "" {
			req.Body = nil
		}
		req.Host = "web.example.lg.jp"
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m string
		var n int
		var addr string
		if _, err := fmt.Sscanf(string(b), "%s %d %s", &m, &n, &addr); err != nil || resp.StatusCode != 200 || m != method || n != len(body) {
			t.Fatalf("%s: %d %q", method, resp.StatusCode, b)
		}
		return addr
	}
	first := do("GET", "")
	for i := 0; i < 4; i++ {
		if a := do("GET", ""); a != first {
			t.Fatalf("GET %d came on upstream connection %s, want the first one %s", i+2, a, first)
		}
	}
	if a := do("POST", "hello"); a == first {
		t.Fatal("the upload came on the body-less requests' connection, want its own transport's")
	}
	if n := f.upClosed.Load(); n != 0 {
		t.Fatalf("%d upstream connections closed before the reload", n)
	}
	if err := f.gw.Reload(f.gw.state.Load().cfg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.upClosed.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of the 2 idle upstream connections closed after the reload", f.upClosed.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if a := do("GET", ""); a == first {
		t.Fatal("after a reload the old route's idle connection was reused")
	}
}

// TestRequestIDBits checks that request ids are 16 characters of the
// base32 alphabet and that every position takes all 32 of them: a
// position built from constant bits (a wrong shift) would take fewer.
func TestRequestIDBits(t *testing.T) {
	var seen [16]map[byte]bool
	for i := range seen {
		seen[i] = map[byte]bool{}
	}
	ids := map[string]bool{}
	for range 4096 {
		id := newRequestID()
		if len(id) != 16 {
			t.Fatalf("id %q: length %d", id, len(id))
		}
		if ids[id] {
			t.Fatalf("id %q twice", id)
		}
		ids[id] = true
		for i := 0; i < len(id); i++ {
			if !strings.ContainsRune(idAlphabet, rune(id[i])) {
				t.Fatalf("id %q: %q is not base32", id, id[i])
			}
			seen[i][id[i]] = true
		}
	}
	for i, s := range seen {
		if len(s) != 32 {
			t.Errorf("position %d took %d characters of 32", i, len(s))
		}
	}
}

func BenchmarkRequestID(b *testing.B) {
	for b.Loop() {
		_ = newRequestID()
	}
}
