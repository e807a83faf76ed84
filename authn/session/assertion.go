package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/sekisho/sekisho/store"
)

// Assertion claim names beyond the registered ones (DESIGN.md §4, "To
// upstream apps"). Upstream apps read them: never rename them.
const (
	claimRoles    = "roles"
	claimClass    = "class"
	claimZone     = "zone"
	claimDeviceID = "device"
)

type assertionKey struct{ session, aud, class, zone string }

type assertionEntry struct {
	token      string
	reuseUntil time.Time
	// What the token says, so a change (a personnel transfer, a step-up)
	// is never hidden by the cache.
	user, device string
	roles, amr   []string
}

// Assertion returns the X-Sekisho-Assertion JWT for a request of session c
// by user u to route aud, of asset class class, from zone zone: ES256 with
// kid, claims iss, aud, sub, iat, exp (cfg.Session.AssertionLifetime), jti,
// amr, roles (u.Roles), device (c.Device; the caller may set it to this
// request's device), class and zone.
//
// A signed assertion is reused for the first third of its lifetime for the
// same session, route, class and zone while user, roles, amr and device are
// unchanged, so upstreams always get one with two thirds of its life left.
// Reuse means the jti repeats across those requests.
func (m *Manager) Assertion(c *Claims, u *store.User, aud, class, zone string) (string, error) {
	if c == nil || u == nil {
		return "", errors.New("session: assertion needs a session and a user")
	}
	if u.ID != c.User {
		return "", fmt.Errorf("session: assertion for session of %q with user record %q", c.User, u.ID)
	}
	now := m.now()
	key := assertionKey{c.ID, aud, class, zone}
	if e, ok := m.asserts.Get(key); ok && now.Before(e.reuseUntil) && e.user == u.ID && e.device == c.Device &&
		slices.Equal(e.roles, u.Roles) && slices.Equal(e.amr, c.AMR) {
		return e.token, nil
	}

	iat := now.Truncate(time.Second)
	tok, err := jwt.NewBuilder().
		Issuer(m.issuer).
		Audience([]string{aud}).
		Subject(u.ID).
		IssuedAt(iat).
		Expiration(iat.Add(m.assertionLifetime)).
		JwtID(newID()).
		Claim(claimAMR, nonNil(c.AMR)).
		Claim(claimRoles, nonNil(u.Roles)).
		Claim(claimDeviceID, c.Device).
		Claim(claimClass, class).
		Claim(claimZone, zone).
		Build()
	if err != nil {
		return "", fmt.Errorf("session: building assertion for %s to %s: %w", u.ID, aud, err)
	}
	ring, err := m.signingRing(context.Background(), &m.assertionKeys)
	if err != nil {
		return "", err
	}
	signed, err := sign(tok, ring, assertionTyp)
	if err != nil {
		return "", fmt.Errorf("session: signing assertion for %s to %s: %w", u.ID, aud, err)
	}
	m.asserts.Add(key, &assertionEntry{
		token:      signed,
		reuseUntil: iat.Add(m.assertionLifetime / 3),
		user:       u.ID,
		device:     c.Device,
		roles:      slices.Clone(u.Roles),
		amr:        slices.Clone(c.AMR),
	})
	return signed, nil
}

// JWKS returns the JWK Set (JSON) of every assertion key whose assertions
// may still be alive, served at /.well-known/sekisho/jwks.json.
func (m *Manager) JWKS() ([]byte, error) {
	ring := m.assertionKeys.Load()
	if ring == nil || len(ring.jwks) == 0 {
		return nil, errors.New("session: no assertion keys loaded")
	}
	return bytes.Clone(ring.jwks), nil
}
