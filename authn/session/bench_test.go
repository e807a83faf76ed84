package session

import (
	"context"
	"testing"

	"github.com/sekisho/sekisho/store"
)

func benchManager(b *testing.B) (*Manager, *Claims, string) {
	m := newManager(b, nil, newFakeClock(), nil)
	c := &Claims{User: "tanaka", AMR: []string{"hwk", "uv", "mtls"}, Device: "pc-0042", CertFP: fp1}
	return m, c, issue(b, m, c)
}

// BenchmarkVerifyCached is the per-request cost for a cookie seen before:
// cache lookup plus the expiry, idle, revocation and binding checks.
func BenchmarkVerifyCached(b *testing.B) {
	m, _, tok := benchManager(b)
	ctx := context.Background()
	if _, err := m.Verify(ctx, tok, fp1); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Verify(ctx, tok, fp1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCold is the first sight of a cookie: parse, ES256
// signature check and claim validation.
func BenchmarkVerifyCold(b *testing.B) {
	m, _, tok := benchManager(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m.cache.Remove(tok)
		if _, err := m.Verify(ctx, tok, fp1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAssertion is the per-request assertion cost: mostly a cache
// hit, as for requests of one session to one route.
func BenchmarkAssertion(b *testing.B) {
	m, c, _ := benchManager(b)
	u := &store.User{ID: "tanaka", Roles: []string{"zaimu", "kacho"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Assertion(c, u, "zaimu", "3B", "chonai"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAssertionSign is the cost of signing a fresh assertion (a cache
// miss).
func BenchmarkAssertionSign(b *testing.B) {
	m, c, _ := benchManager(b)
	u := &store.User{ID: "tanaka", Roles: []string{"zaimu", "kacho"}}
	b.ReportAllocs()
	for b.Loop() {
		m.asserts.Purge()
		if _, err := m.Assertion(c, u, "zaimu", "3B", "chonai"); err != nil {
			b.Fatal(err)
		}
	}
}
