package session

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sekisho/sekisho/internal/testlog"
	"github.com/sekisho/sekisho/store"
)

// storedKids lists the kids of use in st, sorted.
func storedKids(t testing.TB, st store.Store, use string) []string {
	t.Helper()
	keys, err := st.ListKeys(context.Background(), use)
	if err != nil {
		t.Fatal(err)
	}
	kids := make([]string, 0, len(keys))
	for _, k := range keys {
		kids = append(kids, k.ID)
	}
	slices.Sort(kids)
	return kids
}

func mustCreateKey(t testing.TB, m *Manager, use string, from, until time.Time) string {
	t.Helper()
	k, err := m.createKey(context.Background(), use, from, until)
	if err != nil {
		t.Fatal(err)
	}
	return k.rec.ID
}

// TestKeyPrune: the first refresh of a Manager deletes the keys that have
// verified nothing for keyRetention, and keeps the keys within that margin
// and the live ones.
func TestKeyPrune(t *testing.T) {
	cfg := testConfig()
	clock := newFakeClock()
	st := openStore(t, "")
	seed := newManager(t, cfg, clock, st)
	now := clock.Now()

	type keys struct{ gone, kept []string }
	want := map[string]*keys{}
	for use, life := range map[string]time.Duration{useSession: seed.lifetime, useAssertion: seed.assertionLifetime} {
		k := &keys{kept: storedKids(t, st, use)} // the signing key seed created
		dead := now.Add(-life - keyRetention - time.Minute)
		k.gone = append(k.gone, mustCreateKey(t, seed, use, dead.Add(-cfg.Session.KeyRotation), dead))
		// Past NotAfter + token lifetime, but within the margin.
		grace := now.Add(-life - time.Minute)
		k.kept = append(k.kept, mustCreateKey(t, seed, use, grace.Add(-cfg.Session.KeyRotation), grace))
		// Still verifying the tokens it signed.
		verifying := now.Add(-life / 2)
		k.kept = append(k.kept, mustCreateKey(t, seed, use, verifying.Add(-cfg.Session.KeyRotation), verifying))
		slices.Sort(k.kept)
		want[use] = k
	}

	var logs testlog.Buffer
	m, err := New(cfg, st, WithClock(clock.Now), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	for use, k := range want {
		if diff := cmp.Diff(k.kept, storedKids(t, st, use)); diff != "" {
			t.Errorf("%s keys in the store after the first refresh (-want +got):\n%s", use, diff)
		}
		if !strings.Contains(logs.String(), `msg="session: expired signing keys deleted" use=`+use+" count=1") {
			t.Errorf("no Info log of 1 deleted %s key; logs:\n%s", use, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "level=INFO") {
		t.Errorf("deletions not logged at Info; logs:\n%s", logs.String())
	}
	if _, ok := m.sessionKeys.Load().pub[want[useSession].gone[0]]; ok {
		t.Error("a deleted session key is still loaded")
	}
}

// TestKeyPruneHourly: a Manager prunes at most once every pruneEvery, so a
// key that has just become prunable stays until an hour after the last
// prune.
func TestKeyPruneHourly(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	clock := newFakeClock()
	st := openStore(t, "")
	m := newManager(t, cfg, clock, st) // prunes now
	// Prunable 30 minutes from now.
	until := clock.Now().Add(-m.lifetime - keyRetention + 30*time.Minute)
	kid := mustCreateKey(t, m, useSession, until.Add(-cfg.Session.KeyRotation), until)

	clock.Advance(31 * time.Minute)
	if err := m.refreshKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(storedKids(t, st, useSession), kid) {
		t.Fatal("key deleted by a refresh 31m after the last prune, want at most one prune an hour")
	}

	clock.Advance(30 * time.Minute)
	if err := m.refreshKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(storedKids(t, st, useSession), kid) {
		t.Fatal("prunable key still in the store 61m after the last prune")
	}
}

// TestKeyPruneKeepsLiveTokens: after a prune has deleted old keys, tokens
// and assertions signed by keys that may still verify keep verifying, on
// this replica and on one that starts afterwards.
func TestKeyPruneKeepsLiveTokens(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.Session.KeyRotation = time.Hour
	cfg.Session.Idle = 100 * time.Hour // this test walks hours without refreshing
	clock := newFakeClock()
	st := openStore(t, "")
	m := newManager(t, cfg, clock, st)
	u := &store.User{ID: "ito", Roles: []string{"zaimu"}}
	firstKid := m.sessionKeys.Load().kid
	firstAssertionKid := m.assertionKeys.Load().kid

	step := func(d time.Duration) {
		t.Helper()
		for end := clock.Now().Add(d); clock.Now().Before(end); {
			clock.Advance(30 * time.Minute)
			if err := m.refreshKeys(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A session begun 30h in; its key stops signing at 31h but verifies
	// until 41h.
	step(30 * time.Hour)
	claims := &Claims{User: "ito", AMR: []string{"hwk"}}
	tok := issue(t, m, claims)
	tokKid := headerOf(t, tok)["kid"].(string)

	// At 36h the first keys (NotAfter 1h) are past NotAfter + lifetime +
	// keyRetention and the prune deletes them.
	step(5*time.Hour + 30*time.Minute)
	if !slices.Contains(storedKids(t, st, useSession), firstKid) {
		t.Fatal("first session key deleted before 36h")
	}
	clock.Advance(29*time.Minute + 30*time.Second)
	assertion, err := m.Assertion(claims, u, "zaimu", "2", "chonai")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Second)
	if err := m.refreshKeys(ctx); err != nil { // the last prune was at 35h
		t.Fatal(err)
	}
	if kids := storedKids(t, st, useSession); slices.Contains(kids, firstKid) {
		t.Fatal("first session key not deleted at 36h")
	}
	if kids := storedKids(t, st, useAssertion); slices.Contains(kids, firstAssertionKid) {
		t.Fatal("first assertion key not deleted at 36h")
	}
	if !slices.Contains(storedKids(t, st, useSession), tokKid) {
		t.Fatalf("session key %s deleted while its tokens are alive", tokKid)
	}

	m.cache.Purge()
	if _, err := m.Verify(ctx, tok, ""); err != nil {
		t.Errorf("Verify after prune: %v", err)
	}
	if _, err := verifyWithJWKS(t, m, assertion, "zaimu"); err != nil {
		t.Errorf("assertion against JWKS after prune: %v", err)
	}
	m2 := newManager(t, cfg, clock, st)
	if _, err := m2.Verify(ctx, tok, ""); err != nil {
		t.Errorf("a replica started after the prune: Verify: %v", err)
	}
}

// failingDelete is a real store whose DeleteKeys fails.
type failingDelete struct {
	store.Store
	calls atomic.Int32
}

func (s *failingDelete) DeleteKeys(ctx context.Context, use string, before time.Time) (int64, error) {
	s.calls.Add(1)
	return 0, errors.New("disk on fire")
}

// TestKeyPruneFailure: a failed delete is logged and the refresh goes on.
func TestKeyPruneFailure(t *testing.T) {
	st := &failingDelete{Store: openStore(t, "")}
	var logs testlog.Buffer
	m, err := New(testConfig(), st, WithClock(newFakeClock().Now), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatalf("New over a store whose DeleteKeys fails: %v", err)
	}
	if m.sessionKeys.Load() == nil || m.assertionKeys.Load() == nil {
		t.Fatal("keys not loaded")
	}
	if n := st.calls.Load(); n != 2 {
		t.Errorf("DeleteKeys called %d times, want 2 (session and assertion)", n)
	}
	for _, use := range []string{useSession, useAssertion} {
		want := `level=ERROR msg="session: deleting expired signing keys" use=` + use + ` err="disk on fire"`
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q; logs:\n%s", want, logs.String())
		}
	}
}
