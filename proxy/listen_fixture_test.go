package proxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/certs"
)

// listenFixture is a gateway on its real public listeners (HTTPS with
// HTTP/2 and client certificates, plain HTTP) with an in-memory audit
// trail, in front of a plain upstream.
type listenFixture struct {
	gw       *Gateway
	srv      *Server
	https    string
	http     string
	ca       *certs.CA
	caPool   *x509.CertPool
	audit    *memRecorder
	upstream *httptest.Server
	seen     *seen
	// gate lets tests hold the upstream's answers to /hold and /slow.
	gate *upstreamGate
	// stop shuts the server down as SIGTERM does and returns Serve's
	// result; safe to call twice.
	stop func() error
}

// certDevices accepts any client certificate of the fixture's CA and names
// the device by its common name; the real verifier is package authn/mtls.
type certDevices struct{ roots *x509.CertPool }

func (d certDevices) Verify(chain []*x509.Certificate) (string, string, string, error) {
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: d.roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return "", "", "", err
	}
	fp := sha256.Sum256(leaf.Raw)
	return leaf.Subject.CommonName, hex.EncodeToString(fp[:]), "", nil
}

func (certDevices) Reason(error) (string, string) {
	return "端末証明書が無効です。", "bad device certificate"
}
func (certDevices) Code(error) string { return "device_cert_invalid" }

// forgedRefusal is net/http's 400 answer, served by the upstream as a body.
const forgedRefusal = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"

func newListenFixture(tb testing.TB, serverYAML string) *listenFixture {
	tb.Helper()
	dir := tb.TempDir()
	ca, err := certs.Init(filepath.Join(dir, "ca"))
	if err != nil {
		tb.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"127.0.0.1", "web.example.lg.jp"}, 30)
	if err != nil {
		tb.Fatal(err)
	}
	sn := &seen{}
	gate := newUpstreamGate()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sn.add(r)
		switch r.URL.Path {
		case "/forged":
			// A body that is, byte for byte, net/http's own refusal.
			w.Header().Set("Content-Length", strconv.Itoa(len(forgedRefusal)))
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			io.WriteString(w, forgedRefusal)
		case "/stream":
			// No Content-Length: chunked to the client.
			io.WriteString(w, "part 1;")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part 2")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/status/403":
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "upstream says no")
		case "/cut":
			// Announces 10 bytes, sends 5 and drops the connection: the
			// gateway's ReverseProxy aborts the answer (ErrAbortHandler).
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "hello")
			w.(http.Flusher).Flush()
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
		case "/cutchunked":
			// No Content-Length: chunked, and dropped after 5 bytes.
			io.WriteString(w, "hello")
			w.(http.Flusher).Flush()
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
		case "/hold":
			// Answers once the test opens gate.release (or the request
			// ends, or 10 s pass).
			gate.arrived <- r.URL.Path
			select {
			case <-gate.release:
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			io.WriteString(w, "held")
		case "/slow":
			// Waits up to 10 s for the request's context to end and
			// reports how long it took (-1: it never ended).
			gate.arrived <- r.URL.Path
			start := time.Now()
			select {
			case <-r.Context().Done():
				gate.cancelled <- time.Since(start)
			case <-time.After(10 * time.Second):
				gate.cancelled <- -1
				io.WriteString(w, "slow")
			}
		default:
			fmt.Fprintf(w, "upstream path=%s", r.URL.Path)
		}
	}))
	tb.Cleanup(up.Close)
	yaml := fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  http_listen: "127.0.0.1:0"
  shutdown_timeout: 5s
%s
webauthn:
  rp_id: example.lg.jp
zones:
  chonai: [127.0.0.0/8]
routes:
  - name: web
    host: web.example.lg.jp
    upstream: %s
    segment: internet
    class: "1"
    public: true
`, serverYAML, up.URL)
	cfg := loadConfig(tb, dir, yaml)
	rec := &memRecorder{}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	gw, err := New(cfg, WithRecorder(rec), WithDeviceVerifier(certDevices{roots: pool}),
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := NewServer(gw, ServerOptions{TLSCert: &cert, ClientCAs: pool})
	if err != nil {
		tb.Fatal(err)
	}
	addrs, stop := serveListeners(tb, srv)
	return &listenFixture{gw: gw, srv: srv, https: addrs[0], http: addrs[1], ca: ca, caPool: pool,
		audit: rec, upstream: up, seen: sn, gate: gate, stop: stop}
}

// serveListeners opens srv's listeners and serves them until the test
// ends (or stop is called), failing the test if Serve does not return
// within 10 s of the shutdown.
func serveListeners(tb testing.TB, srv *Server) (addrs []string, stop func() error) {
	tb.Helper()
	addrs, err := srv.Listen()
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	var serveErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-done:
			case <-time.After(10 * time.Second):
				serveErr = errors.New("Serve did not return after shutdown")
			}
		})
		return serveErr
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	return addrs, stop
}

// upstreamGate holds the fixture upstream's /hold and /slow answers.
type upstreamGate struct {
	arrived   chan string        // a /hold or /slow request reached the upstream
	release   chan struct{}      // closed: /hold answers
	cancelled chan time.Duration // /slow's wait for its context
}

func newUpstreamGate() *upstreamGate {
	return &upstreamGate{arrived: make(chan string, 64), release: make(chan struct{}), cancelled: make(chan time.Duration, 64)}
}

// tlsConfig is a client configuration that trusts the fixture's CA.
func (f *listenFixture) tlsConfig(protos ...string) *tls.Config {
	return &tls.Config{RootCAs: f.caPool, ServerName: "web.example.lg.jp", NextProtos: protos}
}

// device issues a client certificate for a device id.
func (f *listenFixture) device(tb testing.TB, id string) tls.Certificate {
	tb.Helper()
	is, err := f.ca.IssueDevice(certs.DeviceRequest{Device: id, Days: 30})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// entries returns a copy of every audit entry so far.
func (m *memRecorder) all() []Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Entry(nil), m.entries...)
}

// rawConn is one raw client connection to a listener of the fixture.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// dialRaw connects to the plain listener (!overTLS) or the HTTPS listener
// (HTTP/1.1 by ALPN, with a client certificate if given).
func (f *listenFixture) dialRaw(t *testing.T, overTLS bool, cert *tls.Certificate) *rawConn {
	t.Helper()
	var conn net.Conn
	var err error
	if overTLS {
		tc := f.tlsConfig("http/1.1")
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", f.https, tc)
	} else {
		conn, err = net.DialTimeout("tcp", f.http, 5*time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawConn{t: t, conn: conn, br: bufio.NewReader(conn)}
}

// concurrentGETs runs clients keep-alive clients at once against base,
// each making each GETs, and checks every answer is the one its request
// asked for (no connection state crosses between requests).
func (f *listenFixture) concurrentGETs(t *testing.T, base string, clients, each int) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: f.tlsConfig("http/1.1"), MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	errs := make(chan error, clients)
	for g := 0; g < clients; g++ {
		go func(g int) {
			for i := 0; i < each; i++ {
				path := fmt.Sprintf("/c/%d/%d", g, i)
				req, _ := http.NewRequest("GET", base+path, nil)
				req.Host = "web.example.lg.jp"
				resp, err := cl.Do(req)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(b) != "upstream path="+path {
					errs <- fmt.Errorf("%s: %d %q %v", path, resp.StatusCode, b, err)
					return
				}
			}
			errs <- nil
		}(g)
	}
	for g := 0; g < clients; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
