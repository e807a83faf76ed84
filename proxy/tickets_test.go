package proxy

import (
	"crypto/tls"
	"io"
	"testing"
)

// TestSessionTicketKeysShared: two gateways given the same ticket keys
// resume each other's TLS sessions; with their own keys they do not. The
// client trusts both gateways' CAs, as a cluster's replicas share one
// server certificate: crypto/tls's client does not offer a session whose
// certificate chain its roots do not hold.
func TestSessionTicketKeysShared(t *testing.T) {
	a, b := newListenFixture(t, ""), newListenFixture(t, "")
	roots := a.caPool.Clone()
	if !roots.AppendCertsFromPEM(b.ca.CertPEM()) {
		t.Fatal("B's CA certificate not added")
	}
	resumed := func(f *listenFixture, cache tls.ClientSessionCache) bool {
		t.Helper()
		cfg := f.tlsConfig("http/1.1")
		cfg.RootCAs, cfg.ClientSessionCache = roots, cache
		c, err := tls.Dial("tcp", f.https, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /.sekisho/healthz HTTP/1.1\r\nHost: web.example.lg.jp\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, c); err != nil { // the ticket arrives on the way
			t.Fatal(err)
		}
		return c.ConnectionState().DidResume
	}

	// crypto/tls's own keys: each gateway resumes only its own sessions.
	cache := tls.NewLRUClientSessionCache(4)
	resumed(a, cache)
	if resumed(b, cache) {
		t.Fatal("without shared keys, B resumed A's session: the test proves nothing")
	}
	if !resumed(b, cache) {
		t.Fatal("B did not resume its own session: the client cannot resume at all")
	}

	var k1, k2 [32]byte
	k1[0], k2[0] = 1, 2
	a.srv.SetSessionTicketKeys([][32]byte{k1, k2})
	b.srv.SetSessionTicketKeys([][32]byte{k2, k1}) // encrypts with k2, still decrypts k1
	cache = tls.NewLRUClientSessionCache(4)
	resumed(a, cache)
	if !resumed(b, cache) {
		t.Error("with shared keys, B did not resume the session begun on A")
	}
	if !resumed(a, cache) {
		t.Error("A did not resume the session B issued under the key it only decrypts with")
	}
	b.srv.SetSessionTicketKeys(nil) // no keys: ignored, k2 and k1 stay
	if !resumed(b, cache) {
		t.Error("an empty key set changed B's keys")
	}
}

// BenchmarkTLSHandshake is what a resumed TLS session saves over a full
// handshake with a device certificate (ECDSA P-256 on both sides), client
// and gateway in one process: each iteration dials, sends one request,
// reads the answer and closes. The "resumed" case is what a replica does with a
// ticket issued by another replica once their keys are shared
// (authn/ticketkeys).
func BenchmarkTLSHandshake(b *testing.B) {
	f := newListenFixture(b, "")
	dev := f.device(b, "pc-bench")
	for _, c := range []struct {
		name  string
		cache tls.ClientSessionCache
	}{{"full", nil}, {"resumed", tls.NewLRUClientSessionCache(4)}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := f.tlsConfig("http/1.1")
			cfg.Certificates, cfg.ClientSessionCache = []tls.Certificate{dev}, c.cache
			dial := func() bool {
				conn, err := tls.Dial("tcp", f.https, cfg)
				if err != nil {
					b.Fatal(err)
				}
				// One request answered (the ticket comes with it), then close.
				_, _ = io.WriteString(conn, "GET /.sekisho/healthz HTTP/1.1\r\nHost: web.example.lg.jp\r\nConnection: close\r\n\r\n")
				_, _ = io.Copy(io.Discard, conn)
				r := conn.ConnectionState().DidResume
				conn.Close()
				return r
			}
			dial()
			b.ResetTimer()
			for b.Loop() {
				if dial() != (c.cache != nil) {
					b.Fatal("resumption not as expected")
				}
			}
		})
	}
}
