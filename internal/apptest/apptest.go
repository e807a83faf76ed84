// Package apptest runs a whole sekisho — device CA, SQLite store, audit
// trail, policy and gateway on real TLS and plain listeners — in front of
// a recording upstream, for integration, end-to-end and attack tests.
// Sessions are minted with the session manager, as a passkey login would
// leave them, or made through the real WebAuthn ceremonies with a
// [Browser] and a software authenticator (authn/authntest); with a real
// browser the ceremonies are tested in e2e.
package apptest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/internal/app"
	"github.com/sekisho/sekisho/store"
)

// DefaultPolicy allows class 2 from 庁内 to everyone, 3B 住民記録 with a
// fresh UV passkey on a registered device, and the 3A /admin prefix of
// zaimu only to 財務管理者.
const DefaultPolicy = `
condition, 庁内,       zone=chonai
condition, 新しいUV,   amr=hwk+uv max_auth_age=1h
condition, 15分以内UV, amr=hwk+uv max_auth_age=15m
condition, 登録端末,   device=registered
allow,  *,              class:2,     read|write, 庁内
stepup, role:住民記録,   route:juki,  read|write, 庁内 & 新しいUV & 登録端末
stepup, role:財務管理者, route:zaimu, admin,      庁内 & 15分以内UV & 登録端末
`

// DefaultRoutes: zaimu (class 2, /admin is 3A with the admin action, /export
// 3B), juki (3B, device certificate required) and a case-insensitive route
// for upstreams such as IIS.
const DefaultRoutes = `
  - name: zaimu
    host: zaimu.gw.example.lg.jp
    upstream: {{UPSTREAM}}
    segment: lgwan
    class: "2"
    paths:
      - {prefix: /admin, class: "3A", action: admin}
      - {prefix: /export, class: "3B", action: export}
  - name: juki
    host: juki.gw.example.lg.jp
    upstream: {{UPSTREAM}}
    segment: mynumber
    class: "3B"
    client_cert: required
  - name: bunsho
    host: bunsho.gw.example.lg.jp
    upstream: {{UPSTREAM}}
    segment: lgwan
    class: "2"
    case_insensitive: true
    paths:
      - {prefix: /admin, class: "3A", action: admin}
`

// Options change the world.
type Options struct {
	Policy string // default DefaultPolicy
	Routes string // YAML list items; {{UPSTREAM}} is replaced
	Extra  string // more top-level YAML (must not repeat server/routes/…)
	// Server holds more keys under server:. Unless it sets
	// park_idle_after, a world parks every answered keep-alive connection
	// (park_idle_after: 1; proxy/park.go), and unless it sets fast_path,
	// a world serves plain GETs on the fast path (fast_path: true;
	// proxy/front.go), so that the tests built on worlds (the attack
	// suite) run through both; proxy's own tests cover every path.
	Server string
}

// Seen is one request as the upstream received it.
type Seen struct {
	Method, Path, RawQuery, Host string
	Header                       http.Header
}

// World is a running product.
type World struct {
	T       testing.TB
	App     *app.App
	Dir     string
	CA      *certs.CA
	CAPool  *x509.CertPool
	HTTPS   string // address
	HTTP    string // address
	Metrics string // address

	mu     sync.Mutex
	seen   []Seen
	cancel context.CancelFunc
	done   chan error
}

// Users created in every world.
var Users = []*store.User{
	{ID: "sato", DisplayName: "佐藤 花子", Department: "市民課", Roles: []string{"住民記録"}},
	{ID: "suzuki", DisplayName: "鈴木 一郎", Department: "財務課", Roles: []string{"財務"}},
	{ID: "tanaka", DisplayName: "田中 次郎", Department: "財務課", Roles: []string{"財務", "財務管理者"}},
}

// Start runs a world until the test ends.
func Start(t testing.TB, o Options) *World {
	t.Helper()
	w := &World{T: t, Dir: t.TempDir(), done: make(chan error, 1)}
	var err error
	if w.CA, err = certs.Init(filepath.Join(w.Dir, "ca")); err != nil {
		t.Fatal(err)
	}
	w.CAPool = x509.NewCertPool()
	w.CAPool.AppendCertsFromPEM(w.CA.CertPEM())
	certPEM, keyPEM, err := w.CA.IssueServer([]string{"zaimu.gw.example.lg.jp", "juki.gw.example.lg.jp", "bunsho.gw.example.lg.jp", "127.0.0.1"}, 30)
	if err != nil {
		t.Fatal(err)
	}
	w.Write("server.pem", certPEM)
	w.Write("server-key.pem", keyPEM)
	if err := w.CA.WriteCRL(filepath.Join(w.Dir, "crl.pem"), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.seen = append(w.seen, Seen{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone()})
		w.mu.Unlock()
		fmt.Fprintf(rw, "upstream path=%s user=%s device=%s class=%s", r.URL.Path, r.Header.Get("X-Sekisho-User"), r.Header.Get("X-Sekisho-Device"), r.Header.Get("X-Sekisho-Class"))
	}))
	t.Cleanup(up.Close)
	if o.Policy == "" {
		o.Policy = DefaultPolicy
	}
	if o.Routes == "" {
		o.Routes = DefaultRoutes
	}
	if !strings.Contains(o.Server, "park_idle_after") {
		o.Server = strings.TrimRight(o.Server, "\n") + "\npark_idle_after: 1"
	}
	if !strings.Contains(o.Server, "fast_path") {
		o.Server = strings.TrimRight(o.Server, "\n") + "\nfast_path: true"
	}
	w.Write("policy.csv", []byte(o.Policy))
	w.Write("sekisho.yaml", []byte(fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  http_listen: "127.0.0.1:0"
  metrics_listen: "127.0.0.1:0"
  tls: {cert: server.pem, key: server-key.pem}
  client_ca: [ca/ca.pem]
  crl: crl.pem
%s
store: {driver: sqlite, dsn: data/sekisho.db}
webauthn: {rp_id: gw.example.lg.jp}
zones:
  chonai: [127.0.0.0/8]
routes:
%s
policy: {file: policy.csv}
audit: {dir: data/audit, checkpoint_every: 50, redact: [token, my_number]}
%s
`, indent(o.Server, "  "), strings.ReplaceAll(o.Routes, "{{UPSTREAM}}", up.URL), o.Extra)))
	cfg, err := config.Load(filepath.Join(w.Dir, "sekisho.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	if w.App, err = app.New(ctx, cfg, app.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))); err != nil {
		t.Fatal(err)
	}
	addrs, err := w.App.Listen()
	if err != nil {
		t.Fatal(err)
	}
	w.HTTPS, w.HTTP, w.Metrics = addrs[0], addrs[1], addrs[2]
	go func() { w.done <- w.App.Run(ctx) }()
	t.Cleanup(w.Stop)
	for _, u := range Users {
		c := *u
		if err := w.App.Store.CreateUser(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

// Stop shuts the gateway down gracefully and seals the audit trail. It is
// safe to call twice.
func (w *World) Stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
	w.App.Close()
	w.cancel = nil
}

// Write writes a file under the world's directory.
func (w *World) Write(name string, b []byte) {
	w.T.Helper()
	p := filepath.Join(w.Dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		w.T.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		w.T.Fatal(err)
	}
}

// Device issues a device certificate for id (bound to user, if given).
func (w *World) Device(id, user string) (tls.Certificate, string) {
	w.T.Helper()
	is, err := w.CA.IssueDevice(certs.DeviceRequest{Device: id, User: user, Days: 30})
	if err != nil {
		w.T.Fatal(err)
	}
	c, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		w.T.Fatal(err)
	}
	return c, is.Fingerprint
}

// Login mints a session as a passkey login authAge ago would have left it.
func (w *World) Login(user string, amr []string, authAge time.Duration, device, fp string) string {
	w.T.Helper()
	c := &session.Claims{User: user, AMR: amr, AuthTime: time.Now().Add(-authAge), Device: device, CertFP: fp}
	tok, err := w.App.Sessions.Issue(context.Background(), c)
	if err != nil {
		w.T.Fatal(err)
	}
	return tok
}

// UV is the amr of a passkey login with user verification.
var UV = []string{"hwk", "user", "uv"}

// Response is what a client got.
type Response struct {
	Status int
	Body   string
	Header http.Header
}

// Get sends a GET over TLS, with a session cookie and a device certificate
// if given, without following redirects.
func (w *World) Get(host, path, cookie string, cert *tls.Certificate, headers ...string) Response {
	w.T.Helper()
	tc := &tls.Config{RootCAs: w.CAPool, ServerName: host}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: tc},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	req, err := http.NewRequest("GET", "https://"+w.HTTPS+path, nil)
	if err != nil {
		w.T.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Accept", "text/html")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "__Host-sekisho", Value: cookie})
	}
	resp, err := client.Do(req)
	if err != nil {
		w.T.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{resp.StatusCode, string(b), resp.Header}
}

// Raw writes raw request bytes to the plain HTTP listener and reads one
// response; tests control every byte (paths a client library would clean,
// duplicate headers, smuggling attempts).
func (w *World) Raw(raw string) Response {
	w.T.Helper()
	conn, err := net.DialTimeout("tcp", w.HTTP, 5*time.Second)
	if err != nil {
		w.T.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		w.T.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		w.T.Fatalf("reading response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{resp.StatusCode, string(b), resp.Header}
}

// Seen returns what the upstream received so far.
func (w *World) Seen() []Seen {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Seen(nil), w.seen...)
}

// AuditDir is the trail's directory.
func (w *World) AuditDir() string { return filepath.Join(w.Dir, "data", "audit") }

// Records waits briefly for records of one request id (outcome records are
// written after the response) and returns them.
func (w *World) Records(requestID string) []*audit.Record {
	w.T.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		recs, _, err := audit.QueryAll(w.AuditDir(), audit.Filter{RequestID: requestID})
		if err != nil {
			w.T.Fatal(err)
		}
		if len(recs) > 0 || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Verify stops the world and verifies its audit trail.
func (w *World) Verify() *audit.VerifyResult {
	w.T.Helper()
	w.Stop()
	keys, err := audit.LoadPublicKeys(filepath.Join(w.AuditDir(), "audit.key"))
	if err != nil {
		w.T.Fatal(err)
	}
	res, err := audit.Verify(w.AuditDir(), keys)
	if err != nil {
		w.T.Fatal(err)
	}
	return res
}
