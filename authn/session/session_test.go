package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sekisho/sekisho/store"
	"github.com/sekisho/sekisho/store/storetest"
)

const fp1 = "1f0c9b1d0a8e4f5c6b7a8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"

func TestIssueVerifyRoundTrip(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	clock.Advance(700 * time.Millisecond) // Issue truncates to whole seconds
	st := openStore(t, "")
	m := newManager(t, nil, clock, st)

	c := &Claims{User: "tanaka", AMR: []string{"hwk", "user", "uv", "mtls"}, Device: "pc-0042", CertFP: fp1, IP: "10.1.2.3"}
	tok := issue(t, m, c)

	now := clock.Now().Truncate(time.Second)
	if c.ID == "" || len(c.ID) != 22 {
		t.Errorf("ID = %q, want 22 base64url characters (128 bits)", c.ID)
	}
	want := &Claims{
		ID: c.ID, User: "tanaka", AMR: []string{"hwk", "user", "uv", "mtls"},
		AuthTime: now, IssuedAt: now, ExpiresAt: now.Add(10 * time.Hour), LastSeen: now,
		Device: "pc-0042", CertFP: fp1, IP: "10.1.2.3",
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Issue filled claims (-want +got):\n%s", diff)
	}

	got, err := m.Verify(ctx, tok, fp1)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// IP is kept in the store record only.
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Claims{}, "IP")); diff != "" {
		t.Errorf("Verify (-want +got):\n%s", diff)
	}
	// The cached path answers the same, with the cache's own claims
	// (shared, read only: no copy per request).
	again, err := m.Verify(ctx, tok, fp1)
	if err != nil {
		t.Fatalf("Verify (cached): %v", err)
	}
	if diff := cmp.Diff(want, again, cmpopts.IgnoreFields(Claims{}, "IP")); diff != "" {
		t.Errorf("Verify cached (-want +got):\n%s", diff)
	}
	if again != got {
		t.Error("the cached path returned a copy, want the cache's claims")
	}

	rec, err := st.GetSession(ctx, c.ID)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	wantRec := &store.Session{ID: c.ID, UserID: "tanaka", Device: "pc-0042", CertFP: fp1, AMR: c.AMR, IP: "10.1.2.3",
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Hour), LastSeen: now}
	if diff := cmp.Diff(wantRec, rec, cmpopts.EquateApproxTime(time.Millisecond)); diff != "" {
		t.Errorf("stored session (-want +got):\n%s", diff)
	}

	if _, err := m.Issue(ctx, &Claims{}); err == nil {
		t.Error("Issue without a user succeeded")
	}
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.Session.Lifetime = time.Hour
	cfg.Session.Idle = 30 * time.Minute

	t.Run("idle", func(t *testing.T) {
		clock := newFakeClock()
		m := newManager(t, cfg, clock, nil)
		c := &Claims{User: "sato", AMR: []string{"hwk"}}
		tok := issue(t, m, c)
		clock.Advance(30 * time.Minute)
		if _, err := m.Verify(ctx, tok, ""); err != nil {
			t.Fatalf("Verify at exactly the idle limit: %v", err)
		}
		clock.Advance(time.Second)
		if _, err := m.Verify(ctx, tok, ""); !errors.Is(err, ErrExpired) {
			t.Fatalf("Verify after idle: err = %v, want ErrExpired", err)
		}
	})

	t.Run("sliding refresh then absolute", func(t *testing.T) {
		clock := newFakeClock()
		m := newManager(t, cfg, clock, nil)
		c := &Claims{User: "sato", AMR: []string{"hwk"}}
		tok := issue(t, m, c)
		issued := c.IssuedAt

		clock.Advance(59 * time.Second)
		got, err := m.Verify(ctx, tok, "")
		if err != nil {
			t.Fatal(err)
		}
		if m.NeedsRefresh(got) {
			t.Error("NeedsRefresh after 59s = true, want false")
		}
		// Every 20 minutes the cookie is refreshed: idle never triggers,
		// but the absolute lifetime still ends the session.
		for i := 0; i < 2; i++ {
			clock.Advance(20 * time.Minute)
			got, err := m.Verify(ctx, tok, "")
			if err != nil {
				t.Fatalf("refresh %d: Verify: %v", i, err)
			}
			if !m.NeedsRefresh(got) {
				t.Fatalf("refresh %d: NeedsRefresh = false, want true", i)
			}
			tok = issue(t, m, got)
			if !got.IssuedAt.Equal(issued) || !got.ExpiresAt.Equal(issued.Add(time.Hour)) || !got.LastSeen.Equal(clock.Now()) {
				t.Fatalf("refresh %d: claims %+v: IssuedAt/ExpiresAt must stay, LastSeen must be now", i, got)
			}
		}
		clock.Advance(20*time.Minute - 60*time.Second) // 59:59 after issue
		if _, err := m.Verify(ctx, tok, ""); err != nil {
			t.Fatalf("Verify just before absolute expiry: %v", err)
		}
		clock.Advance(time.Second)
		_, err = m.Verify(ctx, tok, "")
		if !errors.Is(err, ErrExpired) {
			t.Fatalf("Verify at absolute expiry: err = %v, want ErrExpired", err)
		}
		// A fresh Manager (cold path, jwx's exp check) agrees.
		m2 := newManager(t, cfg, clock, nil)
		m2.sessionKeys.Store(m.sessionKeys.Load())
		if _, err := m2.Verify(ctx, tok, ""); !errors.Is(err, ErrExpired) {
			t.Fatalf("cold Verify at absolute expiry: err = %v, want ErrExpired", err)
		}
		// Reissuing an ended session is refused.
		if _, err := m.Issue(ctx, got); !errors.Is(err, ErrExpired) {
			t.Fatalf("Issue for an ended session: err = %v, want ErrExpired", err)
		}
	})
}

func TestDeviceBinding(t *testing.T) {
	ctx := context.Background()
	off := false
	for _, tc := range []struct {
		name     string
		bind     *bool
		cookieFP string
		reqFP    string
		want     error
	}{
		{"bound, same certificate", nil, fp1, fp1, nil},
		{"bound, no certificate", nil, fp1, "", ErrDeviceMismatch},
		{"bound, other certificate", nil, fp1, "ab" + fp1[2:], ErrDeviceMismatch},
		{"bound, cookie without certificate", nil, "", "", nil},
		{"bound, cookie without certificate, request with one", nil, "", fp1, nil},
		{"not bound, no certificate", &off, fp1, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Session.BindToDevice = tc.bind
			m := newManager(t, cfg, newFakeClock(), nil)
			c := &Claims{User: "suzuki", AMR: []string{"hwk", "mtls"}, CertFP: tc.cookieFP}
			if tc.cookieFP != "" {
				c.Device = "pc-7"
			}
			tok := issue(t, m, c)
			_, err := m.Verify(ctx, tok, tc.reqFP)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify: err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.Session.KeyRotation = time.Hour
	cfg.Session.Lifetime = 10 * time.Hour
	cfg.Session.Idle = 100 * time.Hour // this test walks hours without refreshing
	clock := newFakeClock()
	st := openStore(t, "")
	m := newManager(t, cfg, clock, st)
	u := &store.User{ID: "ito", Roles: []string{"zaimu"}}

	old := &Claims{User: "ito", AMR: []string{"hwk"}}
	oldTok := issue(t, m, old)
	oldKid := m.sessionKeys.Load().kid

	// Within the pre-publication window the successor is in the store
	// (so other replicas learn it) but does not sign yet.
	clock.Advance(56 * time.Minute)
	if err := m.refreshKeys(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := st.ListKeys(ctx, useSession)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("session keys in store after 56m = %d, want 2 (current and pre-published successor)", len(keys))
	}
	if kid := m.sessionKeys.Load().kid; kid != oldKid {
		t.Fatalf("signer changed before rotation time: %s → %s", oldKid, kid)
	}

	// An assertion signed just before the rotation.
	clock.Advance(3*time.Minute + 50*time.Second)
	oldAssertion, err := m.Assertion(old, u, "zaimu", "2", "chonai")
	if err != nil {
		t.Fatal(err)
	}

	// After the rotation time Issue signs with the new key without any
	// background help.
	clock.Advance(11 * time.Second)
	fresh := &Claims{User: "ito", AMR: []string{"hwk"}}
	freshTok := issue(t, m, fresh)
	newKid := m.sessionKeys.Load().kid
	if newKid == oldKid {
		t.Fatal("after rotation the signer is still the old key")
	}
	for name, tok := range map[string]string{"old": oldTok, "new": freshTok} {
		hdr := headerOf(t, tok)
		if want := map[string]string{"old": oldKid, "new": newKid}[name]; hdr["kid"] != want {
			t.Errorf("%s token kid = %v, want %s", name, hdr["kid"], want)
		}
		m.cache.Purge()
		if _, err := m.Verify(ctx, tok, ""); err != nil {
			t.Errorf("Verify %s token after rotation: %v", name, err)
		}
	}
	// The old assertion key stays in the JWKS while its assertions may
	// live; new assertions use the new key.
	if _, err := verifyWithJWKS(t, m, oldAssertion, "zaimu"); err != nil {
		t.Errorf("old assertion against JWKS right after rotation: %v", err)
	}
	newAssertion, err := m.Assertion(fresh, u, "zaimu", "2", "chonai")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := headerOf(t, oldAssertion)["kid"], headerOf(t, newAssertion)["kid"]; a == b {
		t.Errorf("assertion kid did not rotate: %v", a)
	}
	if _, err := verifyWithJWKS(t, m, newAssertion, "zaimu"); err != nil {
		t.Errorf("new assertion against JWKS: %v", err)
	}

	// Another replica that loaded keys before the rotation learns the new
	// kid on first sight.
	m2 := newManager(t, cfg, clock, st)
	if _, err := m2.Verify(ctx, freshTok, ""); err != nil {
		t.Errorf("second replica Verify of a new-kid token: %v", err)
	}

	// Once every token an old key signed has expired, the key is dropped.
	clock.Advance(10 * time.Hour)
	if err := m.refreshKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.sessionKeys.Load().pub[oldKid]; ok {
		t.Error("old session key still loaded after its tokens expired")
	}
	jwks, err := m.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	if kid := headerOf(t, oldAssertion)["kid"].(string); containsKid(t, jwks, kid) {
		t.Error("old assertion key still in the JWKS after its assertions expired")
	}
}

func TestRevocation(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		rev     func(c *Claims) *store.Revocation
		revoked bool
	}{
		{"session", func(c *Claims) *store.Revocation { return &store.Revocation{Kind: store.RevokeSession, Subject: c.ID} }, true},
		{"other session", func(c *Claims) *store.Revocation {
			return &store.Revocation{Kind: store.RevokeSession, Subject: "x" + c.ID}
		}, false},
		{"user", func(c *Claims) *store.Revocation { return &store.Revocation{Kind: store.RevokeUser, Subject: "kato"} }, true},
		{"other user", func(c *Claims) *store.Revocation { return &store.Revocation{Kind: store.RevokeUser, Subject: "kimura"} }, false},
		{"device", func(c *Claims) *store.Revocation { return &store.Revocation{Kind: store.RevokeDevice, Subject: "pc-9"} }, true},
		{"other device", func(c *Claims) *store.Revocation {
			return &store.Revocation{Kind: store.RevokeDevice, Subject: "pc-10"}
		}, false},
		{"all", func(c *Claims) *store.Revocation { return &store.Revocation{Kind: store.RevokeAll} }, true},
		{"all, before the session began", func(c *Claims) *store.Revocation {
			return &store.Revocation{Kind: store.RevokeAll, At: c.IssuedAt.Add(-time.Second)}
		}, false},
		{"user, before the session began", func(c *Claims) *store.Revocation {
			return &store.Revocation{Kind: store.RevokeUser, Subject: "kato", At: c.IssuedAt.Add(-time.Second)}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			m := newManager(t, nil, clock, nil)
			c := &Claims{User: "kato", AMR: []string{"hwk"}, Device: "pc-9", CertFP: fp1}
			tok := issue(t, m, c)
			if _, err := m.Verify(ctx, tok, fp1); err != nil {
				t.Fatal(err)
			}
			clock.Advance(5 * time.Second)
			if err := m.Revoke(ctx, tc.rev(c)); err != nil {
				t.Fatal(err)
			}
			_, err := m.Verify(ctx, tok, fp1)
			if tc.revoked != errors.Is(err, ErrRevoked) || (!tc.revoked && err != nil) {
				t.Fatalf("Verify after revocation: err = %v, want revoked=%v", err, tc.revoked)
			}
			if tc.revoked {
				if _, err := m.Issue(ctx, c); !errors.Is(err, ErrRevoked) {
					t.Errorf("reissue of a revoked session: err = %v, want ErrRevoked", err)
				}
				// A new login after the revocation is a new session.
				clock.Advance(time.Second)
				n := &Claims{User: "kato", AMR: []string{"hwk"}, Device: "pc-9", CertFP: fp1}
				if _, err := m.Verify(ctx, issue(t, m, n), fp1); err != nil {
					t.Errorf("new session after revocation: %v", err)
				}
			}
			// A fresh replica loads the same list at start.
			m2 := newManager(t, nil, clock, m.st)
			_, err = m2.Verify(ctx, tok, fp1)
			if tc.revoked != errors.Is(err, ErrRevoked) {
				t.Errorf("fresh replica: err = %v, want revoked=%v", err, tc.revoked)
			}
		})
	}

	t.Run("bad revocations", func(t *testing.T) {
		m := newManager(t, nil, newFakeClock(), nil)
		for _, r := range []*store.Revocation{nil, {Kind: "everyone"}, {Kind: store.RevokeUser}, {Kind: store.RevokeAll, Subject: "x"}} {
			if err := m.Revoke(ctx, r); err == nil {
				t.Errorf("Revoke(%+v) succeeded", r)
			}
		}
	})
}

// TestRevocationAcrossReplicas: two Managers over the same database, as two
// replicas; a revocation on A is refused by B within a second. With SQLite
// (two handles on one file) B learns by polling; with PostgreSQL by
// LISTEN/NOTIFY, so there B polls only hourly to prove the feed works.
func TestRevocationAcrossReplicas(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := t.TempDir() + "/shared.db"
		revokeAcross(t, openStore(t, path), openStore(t, path), 0)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := storetest.PostgresDSN(t)
		open := func() store.Store {
			st, err := store.Open(t.Context(), "postgres", dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
		revokeAcross(t, open(), open(), time.Hour)
	})
}

func revokeAcross(t *testing.T, stA, stB store.Store, bPoll time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := newManager(t, nil, nil, stA)
	b := newManager(t, nil, nil, stB)
	if bPoll > 0 {
		b.pollEvery = bPoll
	}
	done := make(chan struct{}, 2)
	for _, m := range []*Manager{a, b} {
		go func() { m.Run(ctx); done <- struct{}{} }()
	}
	time.Sleep(100 * time.Millisecond) // let Run subscribe

	c := &Claims{User: "yamada", AMR: []string{"hwk", "uv"}}
	tok := issue(t, a, c)
	if _, err := b.Verify(ctx, tok, ""); err != nil {
		t.Fatalf("replica B Verify before revocation: %v", err)
	}
	if err := a.Revoke(ctx, &store.Revocation{Kind: store.RevokeUser, Subject: "yamada", By: "csirt"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := a.Verify(ctx, tok, ""); !errors.Is(err, ErrRevoked) {
		t.Fatalf("replica A right after Revoke: err = %v, want ErrRevoked", err)
	}
	for {
		_, err := b.Verify(ctx, tok, "")
		if errors.Is(err, ErrRevoked) {
			break
		}
		if err != nil {
			t.Fatalf("replica B: %v", err)
		}
		if time.Since(start) > time.Second {
			t.Fatalf("replica B still accepts the session %v after the revocation", time.Since(start))
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("revocation reached replica B after %v", time.Since(start))
	cancel()
	<-done
	<-done
}

// TestRevocationNotified: with a store that notifies (the in-process SQLite
// hub), a second Manager on the same store reacts without waiting for a poll.
func TestRevocationNotified(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openStore(t, "")
	a := newManager(t, nil, nil, st)
	b := newManager(t, nil, nil, st)
	b.pollEvery = time.Hour // only the notification can tell b in time
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	time.Sleep(50 * time.Millisecond) // let Run subscribe

	c := &Claims{User: "mori", AMR: []string{"hwk"}}
	tok := issue(t, a, c)
	if err := a.Revoke(ctx, &store.Revocation{Kind: store.RevokeSession, Subject: c.ID}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		if _, err := b.Verify(ctx, tok, ""); errors.Is(err, ErrRevoked) {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatal("replica B did not learn the revocation within 1s")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("notified revocation reached replica B after %v", time.Since(start))
	cancel()
	<-done
}
