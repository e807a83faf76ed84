package mtls

import (
	"crypto/x509"
	"testing"
	"time"
)

// BenchmarkVerifyCached is the hot path: a device seen within the cache TTL.
func BenchmarkVerifyCached(b *testing.B) {
	root := newTestCA(b, "CA", nil)
	leaf, _ := root.issue(b, "PC-1")
	v, _ := newVerifier(b, testConfig(b, pemOf("X509 CRL", root.crl(b, 1)), root), WithCache(4096, time.Hour))
	chain := []*x509.Certificate{leaf}
	if _, err := v.Verify(chain); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(chain); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyUncached is a full verification: chain, CRL, id.
func BenchmarkVerifyUncached(b *testing.B) {
	root := newTestCA(b, "CA", nil)
	inter := newTestCA(b, "Issuing CA", root)
	leaf, _ := inter.issue(b, "PC-1")
	v, _ := newVerifier(b, testConfig(b, pemOf("X509 CRL", root.crl(b, 1), inter.crl(b, 1)), root, inter), WithCache(0, 0))
	chain := []*x509.Certificate{leaf, inter.cert}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(chain); err != nil {
			b.Fatal(err)
		}
	}
}
