package session

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/sekisho/sekisho/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lateCommit is a real store whose RevocationsSince hides one revocation
// for a while, as a PostgreSQL sequence may hand out seq 9 to a
// transaction that commits after the one holding seq 10.
type lateCommit struct {
	store.Store
	mu     sync.Mutex
	hidden int64
}

func (s *lateCommit) RevocationsSince(ctx context.Context, seq int64) ([]*store.Revocation, error) {
	revs, err := s.Store.RevocationsSince(ctx, seq)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := revs[:0]
	for _, r := range revs {
		if r.Seq != s.hidden {
			out = append(out, r)
		}
	}
	return out, err
}

func (s *lateCommit) reveal() {
	s.mu.Lock()
	s.hidden = 0
	s.mu.Unlock()
}

func TestRevocationCommittedOutOfOrder(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	st := openStore(t, "")
	writer := newManager(t, nil, clock, st)
	late := &lateCommit{Store: st}
	reader := newManager(t, nil, clock, late)

	first := &Claims{User: "first", AMR: []string{"hwk"}}
	second := &Claims{User: "second", AMR: []string{"hwk"}}
	tokFirst, tokSecond := issue(t, writer, first), issue(t, writer, second)
	clock.Advance(time.Second)

	r1 := &store.Revocation{Kind: store.RevokeUser, Subject: "first"}
	r2 := &store.Revocation{Kind: store.RevokeUser, Subject: "second"}
	if err := writer.Revoke(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if err := writer.Revoke(ctx, r2); err != nil {
		t.Fatal(err)
	}
	late.mu.Lock()
	late.hidden = r1.Seq // r1 "commits" late
	late.mu.Unlock()

	if err := reader.syncRevocations(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Verify(ctx, tokSecond, ""); !errors.Is(err, ErrRevoked) {
		t.Fatalf("second: err = %v, want ErrRevoked", err)
	}
	if _, err := reader.Verify(ctx, tokFirst, ""); err != nil {
		t.Fatalf("first before its revocation is visible: %v", err)
	}
	late.reveal()
	if err := reader.syncRevocations(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Verify(ctx, tokFirst, ""); !errors.Is(err, ErrRevoked) {
		t.Fatalf("first after its revocation became visible below the cursor: err = %v, want ErrRevoked", err)
	}
}

// TestKeyRotationReplicasAgree: replicas rotating at the same moment may
// each create a successor; they still settle on one signer, and each
// verifies the other's tokens.
func TestKeyRotationReplicasAgree(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.Session.KeyRotation = time.Hour
	clock := newFakeClock()
	st := openStore(t, "")
	a := newManager(t, cfg, clock, st)
	b := newManager(t, cfg, clock, st)
	if a.sessionKeys.Load().kid != b.sessionKeys.Load().kid {
		t.Fatal("replicas started on one store sign with different keys")
	}
	clock.Advance(58 * time.Minute)
	var wg sync.WaitGroup
	for _, m := range []*Manager{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.refreshKeys(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	clock.Advance(2*time.Minute + time.Second)
	for _, m := range []*Manager{a, b} {
		if err := m.refreshKeys(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ka, kb := a.sessionKeys.Load().kid, b.sessionKeys.Load().kid; ka != kb {
		t.Fatalf("after rotation replicas sign with %s and %s", ka, kb)
	}
	ta := issue(t, a, &Claims{User: "u1", AMR: []string{"hwk"}})
	tb := issue(t, b, &Claims{User: "u2", AMR: []string{"hwk"}})
	if _, err := b.Verify(ctx, ta, ""); err != nil {
		t.Errorf("B verifying A's token: %v", err)
	}
	if _, err := a.Verify(ctx, tb, ""); err != nil {
		t.Errorf("A verifying B's token: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	m, err := New(testConfig(), openStore(t, ""), WithRegisterer(reg), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	tok := issue(t, m, &Claims{User: "u", AMR: []string{"hwk"}})
	m.Verify(ctx, tok, "")
	m.Verify(ctx, tok, "")
	m.Verify(ctx, "x.y.z", "")
	if got := testutil.ToFloat64(m.metrics.verifyOK); got != 2 {
		t.Errorf("verify ok = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.metrics.verifyInvalid); got != 1 {
		t.Errorf("verify invalid = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.metrics.cacheHits); got != 1 {
		t.Errorf("cache hits = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n == 0 {
		t.Errorf("gathering: %d metrics, %v", n, err)
	}
	// A second Manager on the same registry is refused, not silently merged.
	if _, err := New(testConfig(), m.st, WithRegisterer(reg), WithLogger(quietLogger())); err == nil {
		t.Error("second registration on one registry succeeded")
	}
}

// TestKeyMadeBeforeRunIsPublished: two replicas starting on an empty store
// may both create a first key; the one made by the other replica between
// this replica's first load and its subscription (so never notified here)
// is loaded when Run starts, so that this replica's JWKS, which upstreams
// fetch from any replica, lists it at once rather than at the next
// periodic reload (30 s).
func TestKeyMadeBeforeRunIsPublished(t *testing.T) {
	st := openStore(t, "")
	clock := newFakeClock()
	a := newManager(t, nil, clock, st)
	other := newManager(t, nil, clock, st)
	k, err := other.createKey(context.Background(), useAssertion, clock.Now(), clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if jwks, _ := a.JWKS(); containsKid(t, jwks, k.rec.ID) {
		t.Fatal("the key is already published before Run; the test does not test anything")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if jwks, _ := a.JWKS(); containsKid(t, jwks, k.rec.ID) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the other replica's key is not in this replica's JWKS 2 s after Run started")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
