package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/store"
)

// world is a whole gateway on real TLS listeners with its own device CA,
// SQLite store, audit trail and policy, in front of real upstreams. Sessions
// are minted with the session manager (the WebAuthn ceremonies that create
// them are tested in package authn and in e2e with a real browser).
type world struct {
	t        *testing.T
	app      *App
	dir      string
	ca       *certs.CA
	caPool   *x509.CertPool
	https    string
	hits     atomic.Int64
	cancel   context.CancelFunc
	done     chan error
	upstream *httptest.Server
}

const testPolicy = `
condition, 庁内,     zone=chonai
condition, 新しいUV, amr=hwk+uv max_auth_age=1h
condition, 登録端末, device=registered
allow,  *,            class:2,     read|write, 庁内
stepup, role:住民記録, route:juki,  read|write, 庁内 & 新しいUV & 登録端末
`

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), done: make(chan error, 1)}
	var err error
	if w.ca, err = certs.Init(filepath.Join(w.dir, "ca")); err != nil {
		t.Fatal(err)
	}
	w.caPool = x509.NewCertPool()
	w.caPool.AppendCertsFromPEM(w.ca.CertPEM())
	certPEM, keyPEM, err := w.ca.IssueServer([]string{"zaimu.gw.example.lg.jp", "juki.gw.example.lg.jp", "127.0.0.1"}, 30)
	if err != nil {
		t.Fatal(err)
	}
	w.write("server.pem", certPEM)
	w.write("server-key.pem", keyPEM)
	if err := w.ca.WriteCRL(filepath.Join(w.dir, "crl.pem"), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	w.upstream = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.hits.Add(1)
		fmt.Fprintf(rw, "user=%s device=%s class=%s", r.Header.Get("X-Sekisho-User"), r.Header.Get("X-Sekisho-Device"), r.Header.Get("X-Sekisho-Class"))
	}))
	t.Cleanup(w.upstream.Close)
	w.write("policy.csv", []byte(testPolicy))
	w.write("sekisho.yaml", []byte(fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  tls: {cert: server.pem, key: server-key.pem}
  client_ca: [ca/ca.pem]
  crl: crl.pem
store: {driver: sqlite, dsn: data/sekisho.db}
webauthn: {rp_id: gw.example.lg.jp}
zones:
  chonai: [127.0.0.0/8]
routes:
  - name: zaimu
    host: zaimu.gw.example.lg.jp
    upstream: %[1]s
    segment: lgwan
    class: "2"
  - name: juki
    host: juki.gw.example.lg.jp
    upstream: %[1]s
    segment: mynumber
    class: "3B"
    client_cert: required
policy: {file: policy.csv}
audit: {dir: data/audit, checkpoint_every: 10}
`, w.upstream.URL)))
	cfg, err := config.Load(filepath.Join(w.dir, "sekisho.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	if w.app, err = New(ctx, cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))); err != nil {
		t.Fatal(err)
	}
	addrs, err := w.app.Listen()
	if err != nil {
		t.Fatal(err)
	}
	w.https = addrs[0]
	go func() { w.done <- w.app.Run(ctx) }()
	t.Cleanup(w.stop)
	for _, u := range []*store.User{
		{ID: "sato", DisplayName: "佐藤 花子", Department: "市民課", Roles: []string{"住民記録"}},
		{ID: "suzuki", DisplayName: "鈴木 一郎", Department: "財務課", Roles: []string{"財務"}},
	} {
		if err := w.app.Store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *world) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
	w.app.Close()
	w.cancel = nil
}

func (w *world) write(name string, b []byte) {
	w.t.Helper()
	p := filepath.Join(w.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// device issues a device certificate for id.
func (w *world) device(id, user string) (tls.Certificate, string) {
	w.t.Helper()
	is, err := w.ca.IssueDevice(certs.DeviceRequest{Device: id, User: user, Days: 30})
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		w.t.Fatal(err)
	}
	return c, is.Fingerprint
}

// login mints a session as a passkey login would have.
func (w *world) login(user string, amr []string, authAge time.Duration, device, fp string) string {
	w.t.Helper()
	c := &session.Claims{User: user, AMR: amr, AuthTime: time.Now().Add(-authAge), Device: device, CertFP: fp}
	tok, err := w.app.Sessions.Issue(context.Background(), c)
	if err != nil {
		w.t.Fatal(err)
	}
	return tok
}

func (w *world) get(host, path, cookie string, cert *tls.Certificate) (int, string, http.Header) {
	w.t.Helper()
	tc := &tls.Config{RootCAs: w.caPool, ServerName: host}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: tc},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	req, _ := http.NewRequest("GET", "https://"+w.https+path, nil)
	req.Host = host
	req.Header.Set("Accept", "text/html")
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "__Host-sekisho", Value: cookie})
	}
	resp, err := client.Do(req)
	if err != nil {
		w.t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestDeviceCertificateAndClassRequirements(t *testing.T) {
	w := newWorld(t)
	pc, fp := w.device("PC-0123", "sato")
	const juki = "juki.gw.example.lg.jp"

	// No certificate on a client_cert: required route: refused, never forwarded.
	tok := w.login("sato", []string{"hwk", "user", "uv"}, time.Minute, "", "")
	status, body, _ := w.get(juki, "/", tok, nil)
	if status != http.StatusForbidden || !strings.Contains(body, "端末") {
		t.Fatalf("3B without a device certificate: %d %s", status, body)
	}
	if w.hits.Load() != 0 {
		t.Fatal("the upstream saw a refused request")
	}

	// With the certificate, a fresh UV passkey session bound to it: allowed,
	// and the upstream learns the device.
	tok = w.login("sato", []string{"hwk", "user", "uv", "mtls"}, time.Minute, "PC-0123", fp)
	status, body, _ = w.get(juki, "/records", tok, &pc)
	if status != 200 || body != "user=sato device=PC-0123 class=3B" {
		t.Fatalf("3B with device and fresh UV: %d %q", status, body)
	}

	// Authentication older than the class allows: step-up to the login page.
	old := w.login("sato", []string{"hwk", "user", "uv", "mtls"}, 2*time.Hour, "PC-0123", fp)
	status, _, h := w.get(juki, "/records", old, &pc)
	if status != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "/.sekisho/login") {
		t.Fatalf("stale authentication: %d %v", status, h.Get("Location"))
	}

	// A session bound to the device is refused with another device's certificate.
	other, _ := w.device("PC-9999", "sato")
	status, _, h = w.get(juki, "/records", tok, &other)
	if status != http.StatusSeeOther {
		t.Fatalf("cookie replayed from another device: %d %v", status, h)
	}

	// A user without the role: denied even with everything else right.
	tok2 := w.login("suzuki", []string{"hwk", "user", "uv", "mtls"}, time.Minute, "PC-0123", fp)
	status, _, _ = w.get(juki, "/records", tok2, &pc)
	if status != http.StatusForbidden {
		t.Fatalf("user without role on 3B: %d", status)
	}

	// The kill switch on the device: refused at once, before any CRL.
	if err := w.app.Revoke(context.Background(), &store.Revocation{Kind: store.RevokeDevice, Subject: "PC-0123", By: "test", Reason: "lost PC"}); err != nil {
		t.Fatal(err)
	}
	// Its bound session no longer matches a valid device: back to login.
	status, _, _ = w.get(juki, "/records", tok, &pc)
	if status != http.StatusSeeOther {
		t.Fatalf("session of a revoked device: %d", status)
	}
	// A new login on that PC is refused with words that say why.
	status, body, _ = w.get(juki, "/records", w.login("sato", []string{"hwk", "user", "uv"}, time.Minute, "", ""), &pc)
	if status != http.StatusForbidden || !strings.Contains(body, "利用停止") {
		t.Fatalf("revoked device: %d %s", status, body)
	}

	// Certificates revoked in the CRL are refused.
	pc2, _ := w.device("PC-0200", "sato")
	if _, err := w.ca.RevokeDevice("PC-0200", "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	if err := w.ca.WriteCRL(filepath.Join(w.dir, "crl.pem"), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, _, _ = w.get(juki, "/", w.login("sato", []string{"hwk", "user", "uv"}, time.Minute, "", ""), &pc2)
		if status == http.StatusForbidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate revoked in the CRL still allowed: %d", status)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Every decision is in the trail, which verifies after a clean stop.
	w.stop()
	auditDir := filepath.Join(w.dir, "data", "audit")
	keys, err := audit.LoadPublicKeys(filepath.Join(auditDir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := audit.Verify(auditDir, keys)
	if err != nil {
		t.Fatalf("audit.Verify: %v", err)
	}
	if !res.OK() || !res.Closed {
		t.Fatalf("audit trail after a clean stop: %+v", res)
	}
	recs, _, err := audit.QueryAll(auditDir, audit.Filter{User: "sato"})
	if err != nil {
		t.Fatal(err)
	}
	// A 3B allow has the durable decision record (before forwarding) and
	// the outcome record, with the same request id.
	byID := map[string][]*audit.Record{}
	var deny, revoke int
	for _, r := range recs {
		switch {
		case r.Event == "access" && r.Class == "3B" && r.Decision == "allow":
			byID[r.RequestID] = append(byID[r.RequestID], r)
		case r.Event == "access" && r.Decision == "deny":
			deny++
		}
	}
	all, _, _ := audit.QueryAll(auditDir, audit.Filter{})
	for _, r := range all {
		if r.Event == "admin" && r.Action == "revoke_device" && r.Target == "PC-0123" {
			revoke++
		}
	}
	if len(byID) == 0 {
		t.Error("no 3B allow records")
	}
	for id, rs := range byID {
		if len(rs) != 2 || rs[0].Status != 0 || rs[1].Status != 200 || rs[0].Seq > rs[1].Seq {
			t.Errorf("3B request %s: want a durable decision record then an outcome record, got %+v", id, rs)
		}
	}
	if deny < 3 || revoke != 1 {
		t.Errorf("audit: %d denials for sato (want ≥3), %d revoke records (want 1)", deny, revoke)
	}
}
