package session

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/sekisho/sekisho/store"
)

// Key uses in the store.
const (
	useSession   = "session"
	useAssertion = "assertion"
)

// keyring is the immutable key state of one use, rebuilt whole on every
// refresh and swapped in atomically.
type keyring struct {
	// The key that signs now.
	kid       string
	priv      *ecdsa.PrivateKey
	signUntil time.Time
	// Every key whose tokens may still be alive, by kid (including a
	// pre-published successor).
	pub map[string]*ecdsa.PublicKey
	// jwks is the public JWK Set of pub.
	jwks []byte
}

// Key lifecycle. A key signs from CreatedAt until NotAfter (CreatedAt +
// KeyRotation) and verifies until NotAfter + the lifetime of the tokens it
// signs. The successor is written to the store prepublish before it starts
// signing, so that every replica knows it (Run reloads keys more often
// than that) before the first token it signs arrives. A key is deleted from
// the store (pruneKeys, at most every pruneEvery) once it has verified
// nothing for keyRetention.
func (m *Manager) prepublish() time.Duration { return min(m.rotation/4, 5*time.Minute) }

func (m *Manager) keyRefreshEvery() time.Duration {
	return max(min(m.prepublish()/2, 30*time.Second), 100*time.Millisecond)
}

const (
	// keyRetention is how long a key stays in the store after the last
	// token it signed has expired (NotAfter + the token lifetime) before
	// pruneKeys deletes it. The margin covers replicas that run with a
	// longer configured token lifetime during a rolling configuration
	// change (they still verify with the key for longer), and clock skew
	// between replicas.
	keyRetention = 24 * time.Hour
	// pruneEvery is how often, at most, a Manager deletes old keys: every
	// refresh would be a needless write on the store.
	pruneEvery = time.Hour
)

// refreshKeys reloads both key rings from the store, creating a first key
// or the next one when due, and deletes old keys (see pruneKeys).
func (m *Manager) refreshKeys(ctx context.Context) error {
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	m.lastKeyLoad.Store(time.Now().UnixNano())
	m.pruneKeys(ctx)
	s, err := m.loadRing(ctx, useSession, m.lifetime)
	if err != nil {
		return err
	}
	a, err := m.loadRing(ctx, useAssertion, m.assertionLifetime)
	if err != nil {
		return err
	}
	m.sessionKeys.Store(s)
	m.assertionKeys.Store(a)
	return nil
}

// pruneKeys deletes, at most once every pruneEvery (and on the first
// refresh), the keys of each use whose NotAfter is more than its token
// lifetime + keyRetention ago: they can verify nothing, and a private key
// should not outlive its use. A failed delete is logged and does not fail
// the refresh; the next prune retries. The caller holds keyMu.
func (m *Manager) pruneKeys(ctx context.Context) {
	now := m.now()
	if !m.lastKeyPrune.IsZero() && now.Sub(m.lastKeyPrune) < pruneEvery {
		return
	}
	m.lastKeyPrune = now
	for _, u := range []struct {
		use       string
		tokenLife time.Duration
	}{{useSession, m.lifetime}, {useAssertion, m.assertionLifetime}} {
		n, err := m.st.DeleteKeys(ctx, u.use, now.Add(-u.tokenLife-keyRetention))
		switch {
		case err != nil:
			if ctx.Err() == nil {
				m.log.Error("session: deleting expired signing keys", "use", u.use, "err", err)
			}
		case n > 0:
			m.log.Info("session: expired signing keys deleted", "use", u.use, "count", n)
		}
	}
}

// refreshForUnknownKid reloads the keys when a token names a kid we do not
// know (another replica may have just rotated), at most once a second so
// that forged kids cannot hammer the store.
func (m *Manager) refreshForUnknownKid(ctx context.Context) bool {
	last := m.lastKeyLoad.Load()
	now := time.Now().UnixNano()
	if time.Duration(now-last) < time.Second || !m.lastKeyLoad.CompareAndSwap(last, now) {
		return false // reloaded recently, or another request is reloading
	}
	if err := m.refreshKeys(ctx); err != nil {
		m.log.Error("session: reloading keys for an unknown kid", "err", err)
		return false
	}
	return true
}

type loadedKey struct {
	rec  *store.Key
	priv *ecdsa.PrivateKey
}

func (m *Manager) loadRing(ctx context.Context, use string, tokenLife time.Duration) (*keyring, error) {
	now := m.now()
	recs, err := m.st.ListKeys(ctx, use)
	if err != nil {
		return nil, fmt.Errorf("session: listing %s keys: %w", use, err)
	}
	var live []loadedKey
	for _, r := range recs {
		if !now.Before(r.NotAfter.Add(tokenLife)) {
			continue // every token it signed has expired
		}
		priv, err := parsePrivate(r.JWK)
		if err != nil {
			m.log.Error("session: skipping unreadable signing key", "use", use, "kid", r.ID, "err", err)
			continue
		}
		live = append(live, loadedKey{rec: r, priv: priv})
	}

	signer := pickSigner(live, now)
	if signer == nil {
		k, err := m.createKey(ctx, use, now, now.Add(m.rotation))
		if err != nil {
			return nil, err
		}
		live = append(live, k)
		signer = &live[len(live)-1]
	} else if !now.Before(signer.rec.NotAfter.Add(-m.prepublish())) && !hasSuccessor(live, signer) {
		start := signer.rec.NotAfter
		k, err := m.createKey(ctx, use, start, start.Add(m.rotation))
		if err != nil {
			return nil, err
		}
		// Re-take the signer's address: append may have moved the slice.
		kid := signer.rec.ID
		live = append(live, k)
		signer = &live[slices.IndexFunc(live, func(l loadedKey) bool { return l.rec.ID == kid })]
	}

	ring := &keyring{
		kid:       signer.rec.ID,
		priv:      signer.priv,
		signUntil: signer.rec.NotAfter,
		pub:       make(map[string]*ecdsa.PublicKey, len(live)),
	}
	set := jwk.NewSet()
	for _, l := range live {
		ring.pub[l.rec.ID] = &l.priv.PublicKey
		pk, err := publicJWK(l.rec.ID, &l.priv.PublicKey)
		if err != nil {
			return nil, err
		}
		if err := set.AddKey(pk); err != nil {
			return nil, fmt.Errorf("session: building JWKS: %w", err)
		}
	}
	if ring.jwks, err = json.Marshal(set); err != nil {
		return nil, fmt.Errorf("session: encoding JWKS: %w", err)
	}
	return ring, nil
}

// pickSigner chooses the key that signs at now: the newest one in its
// signing window, ties broken by kid so that replicas agree.
func pickSigner(live []loadedKey, now time.Time) *loadedKey {
	var best *loadedKey
	for i := range live {
		r := live[i].rec
		if now.Before(r.CreatedAt) || !now.Before(r.NotAfter) {
			continue
		}
		if best == nil || r.CreatedAt.After(best.rec.CreatedAt) ||
			(r.CreatedAt.Equal(best.rec.CreatedAt) && cmp.Less(r.ID, best.rec.ID)) {
			best = &live[i]
		}
	}
	return best
}

func hasSuccessor(live []loadedKey, signer *loadedKey) bool {
	return slices.ContainsFunc(live, func(l loadedKey) bool { return l.rec.NotAfter.After(signer.rec.NotAfter) })
}

func (m *Manager) createKey(ctx context.Context, use string, from, until time.Time) (loadedKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return loadedKey{}, fmt.Errorf("session: generating %s key: %w", use, err)
	}
	jk, err := jwk.FromRaw(priv)
	if err != nil {
		return loadedKey{}, fmt.Errorf("session: encoding %s key: %w", use, err)
	}
	if err := jwk.AssignKeyID(jk); err != nil {
		return loadedKey{}, fmt.Errorf("session: naming %s key: %w", use, err)
	}
	if err := errors.Join(jk.Set(jwk.AlgorithmKey, jwa.ES256), jk.Set(jwk.KeyUsageKey, jwk.ForSignature)); err != nil {
		return loadedKey{}, fmt.Errorf("session: encoding %s key: %w", use, err)
	}
	raw, err := json.Marshal(jk)
	if err != nil {
		return loadedKey{}, fmt.Errorf("session: encoding %s key: %w", use, err)
	}
	rec := &store.Key{ID: jk.KeyID(), Use: use, JWK: raw, CreatedAt: from, NotAfter: until}
	if err := m.st.PutKey(ctx, rec); err != nil {
		return loadedKey{}, fmt.Errorf("session: storing %s key: %w", use, err)
	}
	m.metrics.keysCreated.WithLabelValues(use).Inc()
	m.log.Info("session: new signing key", "use", use, "kid", rec.ID, "from", from, "until", until)
	return loadedKey{rec: rec, priv: priv}, nil
}

func parsePrivate(b []byte) (*ecdsa.PrivateKey, error) {
	jk, err := jwk.ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("parsing JWK: %w", err)
	}
	var priv ecdsa.PrivateKey
	if err := jk.Raw(&priv); err != nil {
		return nil, fmt.Errorf("want an ECDSA private key: %w", err)
	}
	if priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("want curve P-256, got %s", priv.Curve.Params().Name)
	}
	return &priv, nil
}

func publicJWK(kid string, pub *ecdsa.PublicKey) (jwk.Key, error) {
	pk, err := jwk.FromRaw(pub)
	if err != nil {
		return nil, fmt.Errorf("session: encoding public key %s: %w", kid, err)
	}
	if err := errors.Join(
		pk.Set(jwk.KeyIDKey, kid),
		pk.Set(jwk.AlgorithmKey, jwa.ES256),
		pk.Set(jwk.KeyUsageKey, jwk.ForSignature),
	); err != nil {
		return nil, fmt.Errorf("session: encoding public key %s: %w", kid, err)
	}
	return pk, nil
}
