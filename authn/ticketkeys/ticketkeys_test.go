package ticketkeys

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/store"
	"github.com/sekisho/sekisho/store/storetest"
)

var t0 = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

// clock is a settable fake clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func refresh(t *testing.T, r *Ring) [][32]byte {
	t.Helper()
	keys, err := r.Refresh(t.Context())
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return keys
}

func stored(t *testing.T, st store.Store) []*store.Key {
	t.Helper()
	ks, err := st.ListKeys(t.Context(), Use)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// TestLifecycle follows one key from its first use to its deletion, and
// its successor from its prepublication to taking over.
func TestLifecycle(t *testing.T) {
	st := storetest.SQLite(t)
	clk := &clock{now: t0}
	r := New(st, WithClock(clk.Now), WithLogger(quiet()))

	first := refresh(t, r)
	if len(first) != 1 {
		t.Fatalf("first refresh: %d keys, want 1", len(first))
	}
	ks := stored(t, st)
	if len(ks) != 1 || !ks[0].CreatedAt.Equal(t0) || !ks[0].NotAfter.Equal(t0.Add(Lifetime)) {
		t.Fatalf("stored after the first refresh: %+v", ks)
	}
	// Refreshing again changes nothing until the successor is due.
	clk.Set(t0.Add(Rotation - Prepublish - time.Second))
	if again := refresh(t, r); len(again) != 1 || again[0] != first[0] {
		t.Fatalf("before the successor is due: %d keys, first changed %v", len(again), again[0] != first[0])
	}

	// Prepublished: the successor is in the store and decrypts, the first
	// key still encrypts.
	clk.Set(t0.Add(Rotation - Prepublish))
	pre := refresh(t, r)
	if len(pre) != 2 || pre[0] != first[0] {
		t.Fatalf("at prepublication: %d keys, the first key encrypts: %v", len(pre), pre[0] == first[0])
	}
	ks = stored(t, st)
	if len(ks) != 2 || !ks[1].CreatedAt.Equal(t0.Add(Rotation)) {
		t.Fatalf("stored after prepublication: %+v", ks)
	}
	next := pre[1]

	// At its start the successor encrypts; the first key still decrypts.
	clk.Set(t0.Add(Rotation))
	on := refresh(t, r)
	if len(on) != 2 || on[0] != next || on[1] != first[0] {
		t.Fatalf("at the successor's start: want [next, first], got %d keys", len(on))
	}

	// Day by day, one key a day; the first is deleted at its end.
	for d := 2; d <= 7; d++ {
		clk.Set(t0.Add(time.Duration(d)*Rotation - time.Minute))
		refresh(t, r)
	}
	// At its NotAfter a key is no longer used; the next refresh deletes it.
	end := t0.Add(Lifetime)
	clk.Set(end)
	keys := refresh(t, r)
	for _, k := range keys {
		if k == first[0] {
			t.Error("the first key is still used at its NotAfter")
		}
	}
	clk.Set(end.Add(time.Minute))
	refresh(t, r)
	for _, k := range stored(t, st) {
		if !k.NotAfter.After(end) {
			t.Errorf("key %s (NotAfter %s) still stored at %s", k.ID, k.NotAfter, end.Add(time.Minute))
		}
	}
	if len(keys) != 7 {
		// The keys that started on days 1 to 7.
		t.Errorf("at the first key's end: %d keys, want 7", len(keys))
	}
}

// TestReplicasAgree: two rings on one store use the same keys in the same
// order, and only one successor is written when both find it due.
func TestReplicasAgree(t *testing.T) {
	st := storetest.SQLite(t)
	clk := &clock{now: t0}
	a := New(st, WithClock(clk.Now), WithLogger(quiet()))
	b := New(st, WithClock(clk.Now), WithLogger(quiet()))
	ka := refresh(t, a)
	kb := refresh(t, b)
	if len(kb) != 1 || kb[0] != ka[0] {
		t.Fatalf("the second replica made its own first key: %d keys", len(kb))
	}
	clk.Set(t0.Add(Rotation - Prepublish/2))
	ka = refresh(t, a)
	kb = refresh(t, b)
	if len(stored(t, st)) != 2 {
		t.Fatalf("%d keys stored, want 2 (one successor)", len(stored(t, st)))
	}
	if len(ka) != 2 || len(kb) != 2 || ka[0] != kb[0] || ka[1] != kb[1] {
		t.Fatal("the replicas' keys differ after prepublication")
	}
}

// TestRacingSuccessors: when two replicas each wrote a successor, every
// replica encrypts with the same one (greatest id) and decrypts with both.
func TestRacingSuccessors(t *testing.T) {
	st := storetest.SQLite(t)
	clk := &clock{now: t0}
	a := New(st, WithClock(clk.Now), WithLogger(quiet()))
	refresh(t, a)
	start := t0.Add(Rotation)
	ka, err := a.create(t.Context(), start)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := a.create(t.Context(), start)
	if err != nil {
		t.Fatal(err)
	}
	want := ka
	if kb.id > ka.id {
		want = kb
	}
	clk.Set(start)
	for _, r := range []*Ring{a, New(st, WithClock(clk.Now), WithLogger(quiet()))} {
		keys := refresh(t, r)
		if len(keys) != 3 || keys[0] != want.secret {
			t.Fatalf("%d keys; encrypting with the greatest id: %v", len(keys), keys[0] == want.secret)
		}
	}
}

// TestStaleKeys: after every replica was down for longer than a rotation,
// a new key encrypts at once; after longer than a lifetime, the old keys
// are gone.
func TestStaleKeys(t *testing.T) {
	st := storetest.SQLite(t)
	clk := &clock{now: t0}
	r := New(st, WithClock(clk.Now), WithLogger(quiet()))
	old := refresh(t, r)
	clk.Set(t0.Add(3 * Rotation))
	keys := refresh(t, r)
	if len(keys) != 2 || keys[0] == old[0] || keys[1] != old[0] {
		t.Fatalf("after 3 days: want [new, old], got %d keys", len(keys))
	}
	clk.Set(t0.Add(30 * Rotation))
	keys = refresh(t, r)
	if len(keys) != 1 || len(stored(t, st)) != 1 {
		t.Fatalf("after 30 days: %d keys used, %d stored; want 1 and 1", len(keys), len(stored(t, st)))
	}
}

// TestBadKeySkipped: a stored key that is not a ticket key is skipped;
// the good ones are still used.
func TestBadKeySkipped(t *testing.T) {
	st := storetest.SQLite(t)
	clk := &clock{now: t0}
	r := New(st, WithClock(clk.Now), WithLogger(quiet()))
	good := refresh(t, r)
	for _, bad := range []*store.Key{
		{ID: "short", JWK: []byte(`{"kty":"oct","kid":"short","k":"AAAA"}`)},
		{ID: "rsa", JWK: []byte(`{"kty":"RSA","kid":"rsa","k":"` + string(bytes.Repeat([]byte("A"), 43)) + `"}`)},
		{ID: "other", JWK: []byte(`{"kty":"oct","kid":"someone-else","k":"` + string(bytes.Repeat([]byte("A"), 43)) + `"}`)},
		{ID: "junk", JWK: []byte(`not json`)},
	} {
		bad.Use, bad.CreatedAt, bad.NotAfter = Use, t0.Add(time.Minute), t0.Add(Lifetime)
		if err := st.PutKey(t.Context(), bad); err != nil {
			t.Fatal(err)
		}
	}
	clk.Set(t0.Add(2 * time.Minute))
	keys := refresh(t, r)
	if len(keys) != 1 || keys[0] != good[0] {
		t.Fatalf("with bad keys stored: %d keys used, want only the good one", len(keys))
	}
}

// failingStore fails every key read and write.
type failingStore struct{ store.Store }

var errDown = errors.New("store down")

func (failingStore) ListKeys(context.Context, string) ([]*store.Key, error) { return nil, errDown }
func (failingStore) PutKey(context.Context, *store.Key) error               { return errDown }

// TestRunKeepsKeysWhenStoreFails: Run hands over keys while the store
// answers and never an empty set when it does not.
func TestRunKeepsKeysWhenStoreFails(t *testing.T) {
	st := storetest.SQLite(t)
	var mu sync.Mutex
	var got [][][32]byte
	set := func(k [][32]byte) { mu.Lock(); got = append(got, k); mu.Unlock() }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { New(st, WithLogger(quiet())).Run(ctx, 5*time.Millisecond, set); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run handed over no keys in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	if got[0][0] != got[1][0] {
		t.Error("two refreshes a moment apart gave different keys")
	}
	mu.Unlock()

	if _, err := New(failingStore{st}, WithLogger(quiet())).Refresh(t.Context()); !errors.Is(err, errDown) {
		t.Fatalf("Refresh on a failing store: %v, want errDown", err)
	}
	calls := 0
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	New(failingStore{st}, WithLogger(quiet())).Run(ctx, 5*time.Millisecond, func([][32]byte) { calls++ })
	if calls != 0 {
		t.Errorf("Run on a failing store called set %d times", calls)
	}
}

// TestResumeAcrossServers is the point of the package: a client resumes on
// server B the TLS session it began on server A when both take their keys
// from rings on one store, and does not when each has crypto/tls's own.
func TestResumeAcrossServers(t *testing.T) {
	cert, roots := selfSigned(t)
	serve := func(keys [][32]byte) string {
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
		if keys != nil {
			cfg.SetSessionTicketKeys(keys)
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					_ = c.(*tls.Conn).Handshake()
					_, _ = c.Write([]byte("x")) // the ticket goes out before this
					_, _ = io.Copy(io.Discard, c)
				}()
			}
		}()
		return ln.Addr().String()
	}
	dial := func(addr string, cache tls.ClientSessionCache) bool {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "gw.example.lg.jp", ClientSessionCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil { // reads the ticket too
			t.Fatal(err)
		}
		return c.ConnectionState().DidResume
	}

	st := storetest.SQLite(t)
	ka, err := New(st, WithLogger(quiet())).Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	kb, err := New(st, WithLogger(quiet())).Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	a, b := serve(ka), serve(kb)
	cache := tls.NewLRUClientSessionCache(8)
	if dial(a, cache) {
		t.Fatal("the first connection resumed")
	}
	if !dial(b, cache) {
		t.Error("with shared keys, the session begun on A did not resume on B")
	}

	// The control: crypto/tls's own keys, one set per server.
	a, b = serve(nil), serve(nil)
	cache = tls.NewLRUClientSessionCache(8)
	dial(a, cache)
	if dial(b, cache) {
		t.Error("without shared keys, B resumed A's session: the test proves nothing")
	}
	if !dial(b, cache) {
		t.Error("without shared keys, B did not resume its own session: the client cannot resume at all")
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gw.example.lg.jp"},
		DNSNames: []string{"gw.example.lg.jp"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: c}, pool
}
