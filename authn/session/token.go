package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/sekisho/sekisho/store"
)

// Private claim names in the session cookie. They are a wire format shared
// by every replica and every cookie still alive: never rename them.
const (
	claimAuthTime = "auth_time" // OpenID Connect's name
	claimAMR      = "amr"       // RFC 8176
	claimLastSeen = "ls"
	claimDevice   = "dev"
	claimCertFP   = "cfp"
)

// parseSkew is the clock difference between replicas that jwx tolerates on
// iat. Expiry is checked again, exactly, after parsing.
const parseSkew = time.Minute

var errUnknownKid = errors.New("unknown kid")

// Issue signs c as a session cookie and records the session in the store.
//
// For a new session (c.ID empty) it fills in c: ID, IssuedAt, ExpiresAt
// (IssuedAt + cfg.Session.Lifetime), AuthTime (now, if zero) and LastSeen.
// For an existing session (a refresh or a step-up: c came from Verify) it
// keeps ID, IssuedAt and ExpiresAt, sets LastSeen to now and refuses a
// session that has expired or been revoked. Times are truncated to whole
// seconds, as the token carries them.
func (m *Manager) Issue(ctx context.Context, c *Claims) (string, error) {
	if c == nil || c.User == "" {
		return "", errors.New("session: issuing a session needs a user")
	}
	now := m.now().Truncate(time.Second)
	if c.ID == "" {
		c.ID = newID()
		c.IssuedAt = now
		c.ExpiresAt = now.Add(m.lifetime)
		if c.AuthTime.IsZero() {
			c.AuthTime = now
		}
		c.AuthTime = c.AuthTime.Truncate(time.Second)
		c.LastSeen = now
		rec := &store.Session{
			ID: c.ID, UserID: c.User, Device: c.Device, CertFP: c.CertFP, AMR: c.AMR, IP: c.IP,
			CreatedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt, LastSeen: c.LastSeen,
		}
		if err := m.st.CreateSession(ctx, rec); err != nil {
			return "", fmt.Errorf("session: recording session for %s: %w", c.User, err)
		}
	} else {
		if c.IssuedAt.IsZero() || c.ExpiresAt.IsZero() {
			return "", fmt.Errorf("session: reissuing %s: claims lack issue or expiry time", c.ID)
		}
		if !now.Before(c.ExpiresAt) {
			return "", fmt.Errorf("session: reissuing %s: %w", c.ID, ErrExpired)
		}
		if m.revs.Load().revoked(c) {
			return "", fmt.Errorf("session: reissuing %s: %w", c.ID, ErrRevoked)
		}
		c.AuthTime = c.AuthTime.Truncate(time.Second)
		c.LastSeen = now
		err := m.st.TouchSession(ctx, c.ID, now)
		if errors.Is(err, store.ErrNotFound) {
			err = m.st.CreateSession(ctx, &store.Session{
				ID: c.ID, UserID: c.User, Device: c.Device, CertFP: c.CertFP, AMR: c.AMR, IP: c.IP,
				CreatedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt, LastSeen: c.LastSeen,
			})
		}
		if err != nil {
			return "", fmt.Errorf("session: recording use of session %s: %w", c.ID, err)
		}
	}

	b := jwt.NewBuilder().
		Issuer(m.issuer).
		Audience([]string{sessionAudience}).
		Subject(c.User).
		JwtID(c.ID).
		IssuedAt(c.IssuedAt).
		Expiration(c.ExpiresAt).
		Claim(claimAuthTime, c.AuthTime.Unix()).
		Claim(claimAMR, nonNil(c.AMR)).
		Claim(claimLastSeen, c.LastSeen.Unix())
	if c.Device != "" {
		b = b.Claim(claimDevice, c.Device)
	}
	if c.CertFP != "" {
		b = b.Claim(claimCertFP, c.CertFP)
	}
	tok, err := b.Build()
	if err != nil {
		return "", fmt.Errorf("session: building token for %s: %w", c.ID, err)
	}
	ring, err := m.signingRing(ctx, &m.sessionKeys)
	if err != nil {
		return "", err
	}
	signed, err := sign(tok, ring, sessionTyp)
	if err != nil {
		return "", fmt.Errorf("session: signing session %s: %w", c.ID, err)
	}
	return signed, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// signingRing returns the ring of p, first rotating keys if its signer has
// retired (so that nothing is signed by a retired key even when Run is not
// running).
func (m *Manager) signingRing(ctx context.Context, p interface{ Load() *keyring }) (*keyring, error) {
	ring := p.Load()
	if m.now().Before(ring.signUntil) {
		return ring, nil
	}
	if err := m.refreshKeys(ctx); err != nil {
		return nil, err
	}
	return p.Load(), nil
}

func sign(tok jwt.Token, ring *keyring, typ string) (string, error) {
	hdr := jws.NewHeaders()
	if err := errors.Join(hdr.Set(jws.KeyIDKey, ring.kid), hdr.Set(jws.TypeKey, typ)); err != nil {
		return "", err
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256, ring.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Verify checks a session cookie and returns its claims. certFP is the hex
// SHA-256 of the client certificate on this request ("" if none).
//
// A token seen before is taken from a bounded cache of verified claims;
// expiry, idle timeout, revocation and device binding are checked on every
// call. The returned Claims are the cache's, shared by every request with
// the same token: the caller must not change them (copy them first, as
// authn's Refresh does). A copy per request was two allocations of the
// gateway's hot path.
func (m *Manager) Verify(ctx context.Context, token, certFP string) (*Claims, error) {
	now := m.now()
	c, ok := m.cache.Get(token)
	if ok {
		m.metrics.cacheHits.Inc()
	} else {
		m.metrics.cacheMisses.Inc()
		var err error
		if c, err = m.parse(ctx, token, now); err != nil {
			m.count(err)
			return nil, err
		}
		if now.Before(c.ExpiresAt) {
			m.cache.Add(token, c)
		}
	}
	if err := m.check(c, now, certFP); err != nil {
		m.count(err)
		return nil, err
	}
	m.metrics.verifyOK.Inc()
	return c, nil
}

// check runs the per-request checks, all in memory.
func (m *Manager) check(c *Claims, now time.Time, certFP string) error {
	switch {
	case !now.Before(c.ExpiresAt):
		return fmt.Errorf("session %s ended at %s: %w", c.ID, c.ExpiresAt.Format(time.RFC3339), ErrExpired)
	case m.idle > 0 && now.Sub(c.LastSeen) > m.idle:
		return fmt.Errorf("session %s idle since %s: %w", c.ID, c.LastSeen.Format(time.RFC3339), ErrExpired)
	case m.revs.Load().revoked(c):
		return fmt.Errorf("session %s: %w", c.ID, ErrRevoked)
	case m.bound && c.CertFP != "" && certFP != c.CertFP:
		return fmt.Errorf("session %s bound to certificate %.16s…, request has %q: %w", c.ID, c.CertFP, certFP, ErrDeviceMismatch)
	}
	return nil
}

// NeedsRefresh reports whether the caller should reissue the cookie (Issue
// then SetCookie) so that the idle timeout slides: LastSeen is older than a
// minute and the session has not ended.
func (m *Manager) NeedsRefresh(c *Claims) bool {
	now := m.now()
	return now.Sub(c.LastSeen) >= refreshAfter && now.Before(c.ExpiresAt)
}

// compactJWS reports whether s has the shape header.payload.signature with
// base64url characters only; anything else (JSON serialization, JWE, junk)
// is refused before jwx sees it.
func compactJWS(s string) bool {
	if len(s) == 0 || len(s) > maxTokenLen {
		return false
	}
	dots := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			dots++
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return dots == 2
}

// provider gives jwx the verification key for one signature: only ES256,
// only the expected typ, only a kid of ring.
func provider(ring *keyring, typ string) jws.KeyProvider {
	return jws.KeyProviderFunc(func(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
		h := sig.ProtectedHeaders()
		if h.Algorithm() != jwa.ES256 {
			return fmt.Errorf("alg %q refused", h.Algorithm())
		}
		if h.Type() != typ {
			return fmt.Errorf("typ %q refused", h.Type())
		}
		pub, ok := ring.pub[h.KeyID()]
		if !ok {
			return fmt.Errorf("kid %q: %w", h.KeyID(), errUnknownKid)
		}
		sink.Key(jwa.ES256, pub)
		return nil
	})
}

func (m *Manager) parse(ctx context.Context, token string, now time.Time) (*Claims, error) {
	if !compactJWS(token) {
		return nil, fmt.Errorf("session: token is not a compact JWS: %w", ErrInvalid)
	}
	tok, err := m.parseJWT(token, m.sessionKeys.Load(), now)
	if errors.Is(err, errUnknownKid) && m.refreshForUnknownKid(ctx) {
		tok, err = m.parseJWT(token, m.sessionKeys.Load(), now)
	}
	switch {
	case errors.Is(err, jwt.ErrTokenExpired()):
		return nil, fmt.Errorf("session: %w", ErrExpired)
	case err != nil:
		return nil, fmt.Errorf("session: %w: %w", ErrInvalid, err)
	}
	return claimsOf(tok)
}

func (m *Manager) parseJWT(token string, ring *keyring, now time.Time) (jwt.Token, error) {
	return jwt.ParseString(token,
		jwt.WithKeyProvider(provider(ring, sessionTyp)),
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
		jwt.WithAcceptableSkew(parseSkew),
		jwt.WithIssuer(m.issuer),
		jwt.WithAudience(sessionAudience),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.IssuedAtKey),
		jwt.WithRequiredClaim(jwt.JwtIDKey),
		jwt.WithRequiredClaim(jwt.SubjectKey),
	)
}

// claimsOf reads our claims out of a verified token. Only our own keys sign
// these tokens, so a wrong type here is a bug, still refused as invalid.
func claimsOf(tok jwt.Token) (*Claims, error) {
	c := &Claims{
		ID:        tok.JwtID(),
		User:      tok.Subject(),
		IssuedAt:  tok.IssuedAt(),
		ExpiresAt: tok.Expiration(),
	}
	var bad []string
	pc := tok.PrivateClaims()
	num := func(name string) time.Time {
		f, ok := pc[name].(float64)
		if !ok {
			bad = append(bad, name)
			return time.Time{}
		}
		return time.Unix(int64(f), 0)
	}
	str := func(name string) string {
		v, ok := pc[name]
		if !ok {
			return ""
		}
		s, ok := v.(string)
		if !ok {
			bad = append(bad, name)
		}
		return s
	}
	c.AuthTime = num(claimAuthTime)
	c.LastSeen = num(claimLastSeen)
	c.Device = str(claimDevice)
	c.CertFP = str(claimCertFP)
	if list, ok := pc[claimAMR].([]interface{}); ok {
		c.AMR = make([]string, 0, len(list))
		for _, v := range list {
			s, ok := v.(string)
			if !ok {
				bad = append(bad, claimAMR)
				break
			}
			c.AMR = append(c.AMR, s)
		}
	} else {
		bad = append(bad, claimAMR)
	}
	if c.ID == "" || c.User == "" {
		bad = append(bad, "jti/sub")
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("session: claims %v malformed: %w", bad, ErrInvalid)
	}
	return c, nil
}

func (m *Manager) count(err error) {
	switch {
	case errors.Is(err, ErrExpired):
		m.metrics.verifyExpired.Inc()
	case errors.Is(err, ErrRevoked):
		m.metrics.verifyRevoked.Inc()
	case errors.Is(err, ErrDeviceMismatch):
		m.metrics.verifyDevice.Inc()
	default:
		m.metrics.verifyInvalid.Inc()
	}
}
