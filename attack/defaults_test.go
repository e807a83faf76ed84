package attack

import (
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/internal/apptest"
)

// TestTLSDefaults: TLS 1.0 and 1.1 and suites without forward secrecy or
// AEAD are refused; TLS 1.2 with an ECDHE AEAD suite and TLS 1.3 work.
func TestTLSDefaults(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	dial := func(c *tls.Config) (*tls.Conn, error) {
		c.RootCAs, c.ServerName = w.CAPool, zaimu
		return tls.Dial("tcp", w.HTTPS, c)
	}
	for name, c := range map[string]*tls.Config{
		"TLS 1.0":           {MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10},
		"TLS 1.1":           {MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11},
		"TLS 1.2 RSA kex":   {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384}},
		"TLS 1.2 CBC":       {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}},
		"TLS 1.2 3DES":      {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}},
		"TLS 1.2 RC4":       {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA, tls.TLS_RSA_WITH_RC4_128_SHA}},
		"TLS 1.2 CBC SHA1 ": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}},
	} {
		if conn, err := dial(c); err == nil {
			st := conn.ConnectionState()
			conn.Close()
			t.Errorf("%s accepted: version %x suite %s", name, st.Version, tls.CipherSuiteName(st.CipherSuite))
		}
	}
	for name, c := range map[string]*tls.Config{
		"TLS 1.3":                {MinVersion: tls.VersionTLS13},
		"TLS 1.2 ECDHE AES-GCM":  {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}},
		"TLS 1.2 ECDHE ChaCha20": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305}},
	} {
		conn, err := dial(c)
		if err != nil {
			t.Errorf("%s refused: %v", name, err)
			continue
		}
		conn.Close()
	}
}

// TestSecurityHeadersOnPages: every page sekisho draws itself (deny,
// errors, login, the login redirect) forbids framing, sniffing, caching
// and referrers and carries a CSP; over TLS, HSTS.
func TestSecurityHeadersOnPages(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	suzuki := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	pages := map[string]apptest.Response{
		"403 deny":       w.Get(zaimu, "/admin", suzuki, nil),
		"400 bad path":   w.Get(zaimu, "/a%2fb", suzuki, nil),
		"404 unknown":    do(t, client(t, w, zaimu, nil), getReq(w, "unknown.gw.example.lg.jp", "/", "")),
		"303 to login":   w.Get(zaimu, "/public", "", nil),
		"login page":     w.Get(zaimu, "/.sekisho/login", "", nil),
		"account page":   w.Get(zaimu, "/.sekisho/account", suzuki, nil),
		"cert refused":   w.Get(juki, "/", w.Login("sato", apptest.UV, time.Minute, "", ""), nil),
		"authn 404 page": w.Get(zaimu, "/.sekisho/nothing", "", nil),
	}
	want := map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	}
	var noHSTS []string
	for name, r := range pages {
		if name == "303 to login" {
			// A redirect has no body to protect; HSTS is what matters.
		} else {
			for k, v := range want {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s (%d): %s = %q, want %q", name, r.Status, k, got, v)
				}
			}
			csp := r.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("%s: CSP %q", name, csp)
			}
			if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("%s: Cache-Control %q", name, cc)
			}
		}
		if !strings.HasPrefix(r.Header.Get("Strict-Transport-Security"), "max-age=") {
			noHSTS = append(noHSTS, name)
		}
	}
	if len(noHSTS) > 0 {
		t.Errorf("GAP (fixed; regression): no Strict-Transport-Security over TLS on: %v (proxy/pages.go sets it only on its error pages; authn/pages.go securityHeaders and the login redirect do not)", noHSTS)
	}
}

// TestKeyFilePermissions: private keys readable by group or others are
// refused. The device CA does it (certs.ErrInsecureKey); the gateway's TLS
// key and the audit signing key are checked here too.
func TestKeyFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	if _, err := certs.Init(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, certs.KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.Load(dir); !errors.Is(err, certs.ErrInsecureKey) {
		t.Errorf("certs.Load with a world-readable CA key: %v, want ErrInsecureKey", err)
	}
	if testing.Short() {
		return
	}

	var gaps []string
	// The gateway's TLS key.
	s := newSite(t, "http://127.0.0.1:9", "")
	if err := os.Chmod(filepath.Join(s.dir, "server-key.pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	if startsAnyway(t, s) {
		gaps = append(gaps, "server.tls.key 0644 is used (internal/app loads it with tls.LoadX509KeyPair, no mode check)")
	}
	os.Chmod(filepath.Join(s.dir, "server-key.pem"), 0o600)

	// The audit signing key (created 0600 on first start).
	p := s.start(t)
	p.kill(syscall.SIGTERM)
	key := filepath.Join(s.auditDir, "audit.key")
	if _, err := os.Stat(key); err != nil {
		t.Fatalf("audit key not at %s: %v", key, err)
	}
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if startsAnyway(t, s) {
		gaps = append(gaps, "audit.key 0644 is used (audit/key.go has no mode check)")
	}
	if len(gaps) > 0 {
		t.Errorf("GAP (fixed; regression): private keys readable by group/others are accepted: %s", strings.Join(gaps, "; "))
	}
}

// startsAnyway reports whether `sekisho serve` becomes ready with s.
func startsAnyway(t *testing.T, s *site) bool {
	t.Helper()
	cmd := newServeCmd(t, s)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			done <- nil
			return false
		default:
		}
		if resp, err := http.Get("http://" + s.metrics + "/healthz"); err == nil {
			resp.Body.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
