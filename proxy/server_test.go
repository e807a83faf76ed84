package proxy

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
	"testing"
	"time"

	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/config"
)

// tlsFixture is a gateway on real listeners (HTTPS with HTTP/2, metrics)
// in front of an HTTPS upstream whose certificate comes from a private CA.
type tlsFixture struct {
	srv      *Server
	addrs    []string
	cancel   context.CancelFunc
	done     chan error
	caPool   *x509.CertPool
	upstream *httptest.Server
}

func newTLSFixture(t *testing.T, upstream http.Handler) *tlsFixture {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.Init(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"127.0.0.1", "web.example.lg.jp"}, 30)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("server.pem", certPEM)
	write("server-key.pem", keyPEM)
	write("ca.pem", ca.CertPEM())

	// The upstream speaks TLS with a certificate of the same private CA.
	up := httptest.NewUnstartedServer(upstream)
	upCert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	up.TLS = &tls.Config{Certificates: []tls.Certificate{upCert}}
	up.StartTLS()
	t.Cleanup(up.Close)

	yaml := fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  tls: {cert: server.pem, key: server-key.pem}
  metrics_listen: "127.0.0.1:0"
  shutdown_timeout: 5s
webauthn:
  rp_id: example.lg.jp
routes:
  - name: web
    host: web.example.lg.jp
    upstream: %s
    upstream_ca: ca.pem
    segment: internet
    class: "1"
    public: true
`, up.URL)
	cfgPath := write("sekisho.yaml", []byte(yaml))
	write("policy.csv", nil)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(cfg.Server.TLS.Cert, cfg.Server.TLS.Key)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(gw, ServerOptions{TLSCert: &cert})
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &tlsFixture{srv: srv, addrs: addrs, cancel: cancel, done: make(chan error, 1), upstream: up}
	f.caPool = x509.NewCertPool()
	f.caPool.AppendCertsFromPEM(ca.CertPEM())
	go func() { f.done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-f.done
	})
	return f
}

func (f *tlsFixture) client(h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.caPool, ServerName: "web.example.lg.jp"}, ForceAttemptHTTP2: h2}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestHTTP2OverTLSAndUpstreamCustomCA(t *testing.T) {
	f := newTLSFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream proto=%s tls=%t path=%s", r.Proto, r.TLS != nil, r.URL.Path)
	}))
	req, _ := http.NewRequest("GET", "https://"+f.addrs[0]+"/a/../hello", nil)
	req.Host = "web.example.lg.jp"
	resp, err := f.client(true).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("client protocol = %s, want HTTP/2", resp.Proto)
	}
	if resp.StatusCode != 200 || string(body) != "upstream proto=HTTP/1.1 tls=true path=/hello" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	if h := resp.Header.Get("X-Request-Id"); len(h) != 16 {
		t.Errorf("X-Request-Id = %q", h)
	}
}

func TestTLSRefusesOldVersions(t *testing.T) {
	f := newTLSFixture(t, http.HandlerFunc(okHandler))
	conn, err := tls.Dial("tcp", f.addrs[0], &tls.Config{RootCAs: f.caPool, ServerName: "web.example.lg.jp", MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10})
	if err == nil {
		conn.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
}

func TestMetricsListener(t *testing.T) {
	f := newTLSFixture(t, http.HandlerFunc(okHandler))
	req, _ := http.NewRequest("GET", "https://"+f.addrs[0]+"/x", nil)
	req.Host = "web.example.lg.jp"
	if resp, err := f.client(false).Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	base := "http://" + f.addrs[1]
	for path, want := range map[string]string{
		"/healthz": "ok", "/readyz": "ready",
		"/metrics": `sekisho_requests_total{code="200",route="web"} 1`,
	} {
		// The request is counted just after its response is sent: poll.
		var status int
		var body []byte
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
			if (status == 200 && strings.Contains(string(body), want)) || time.Now().After(deadline) {
				break
			}
		}
		if status != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d, body lacks %q", path, status, want)
		}
	}
	// The public listener never serves /metrics.
	req, _ = http.NewRequest("GET", "https://"+f.addrs[0]+"/metrics", nil)
	req.Host = "unknown.example.lg.jp"
	resp, err := f.client(false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the public listener: %d", resp.StatusCode)
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	started := make(chan struct{})
	f := newTLSFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(500 * time.Millisecond)
		io.WriteString(w, "finished")
	}))
	result := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", "https://"+f.addrs[0]+"/slow", nil)
		req.Host = "web.example.lg.jp"
		resp, err := f.client(false).Do(req)
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- string(b)
	}()
	<-started
	f.cancel() // as SIGTERM does
	if got := <-result; got != "finished" {
		t.Fatalf("in-flight request got %q during shutdown", got)
	}
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		f.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	// New connections are refused once shut down.
	if _, err := tls.Dial("tcp", f.addrs[0], &tls.Config{RootCAs: f.caPool, ServerName: "web.example.lg.jp"}); err == nil {
		t.Error("a new connection was accepted after shutdown")
	}
}
