package session

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/sekisho/sekisho/store"
)

func headerOf(t testing.TB, tok string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("decoding header: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decoding header: %v", err)
	}
	return m
}

func payloadOf(t testing.TB, tok string) map[string]any {
	t.Helper()
	p := strings.Split(tok, ".")[1]
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		t.Fatalf("decoding payload: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decoding payload: %v", err)
	}
	return m
}

func b64json(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// signWith signs claims as a compact JWS with the given alg, key and headers.
func signWith(t testing.TB, claims map[string]any, alg jwa.SignatureAlgorithm, key any, hdr map[string]any) string {
	t.Helper()
	h := jws.NewHeaders()
	for k, v := range hdr {
		if err := h.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	b, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatalf("signing forgery: %v", err)
	}
	return string(b)
}

// TestRefuseForgeries: everything that is not an ES256 cookie signed by our
// session key with our issuer, audience and type is ErrInvalid.
func TestRefuseForgeries(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m := newManager(t, nil, clock, nil)
	c := &Claims{User: "abe", AMR: []string{"hwk"}}
	good := issue(t, m, c)
	ring := m.sessionKeys.Load()
	kid := ring.kid
	claims := payloadOf(t, good)
	hdr := map[string]any{"kid": kid, "typ": sessionTyp}

	with := func(k string, v any) map[string]any {
		out := map[string]any{}
		for kk, vv := range claims {
			out[kk] = vv
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	withHdr := func(k string, v any) map[string]any {
		out := map[string]any{"kid": kid, "typ": sessionTyp}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}

	// The HS/ES confusion attack: the public key, in every form an
	// attacker might guess, used as an HMAC secret.
	pub := &ring.priv.PublicKey
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubJWK, err := publicJWK(kid, pub)
	if err != nil {
		t.Fatal(err)
	}
	pubJSON, _ := json.Marshal(pubJWK)
	jwksJSON, _ := m.JWKS()
	hmacSecrets := map[string][]byte{
		"pem":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"der":  der,
		"jwk":  pubJSON,
		"jwks": jwksJSON,
	}

	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)

	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + b64json(t, with("sub", "admin")) + "." + parts[2]

	cases := map[string]string{
		"empty":              "",
		"garbage":            "not a token",
		"two parts":          parts[0] + "." + parts[1],
		"four parts":         good + ".x",
		"padding":            good + "=",
		"too long":           good + strings.Repeat("A", maxTokenLen),
		"tampered payload":   tampered,
		"signature of other": parts[0] + "." + parts[1] + "." + strings.Split(signWith(t, claims, jwa.ES256, other, hdr), ".")[2],
		"alg none":           b64json(t, map[string]any{"alg": "none", "kid": kid, "typ": sessionTyp}) + "." + parts[1] + ".",
		"alg none, sig kept": b64json(t, map[string]any{"alg": "none", "kid": kid, "typ": sessionTyp}) + "." + parts[1] + "." + parts[2],
		"alg NONE":           b64json(t, map[string]any{"alg": "NONE", "kid": kid, "typ": sessionTyp}) + "." + parts[1] + ".",
		"unknown kid":        signWith(t, claims, jwa.ES256, other, withHdr("kid", "no-such-kid")),
		"no kid":             signWith(t, claims, jwa.ES256, ring.priv, withHdr("kid", nil)),
		"our kid, other key": signWith(t, claims, jwa.ES256, other, hdr),
		"ES384 other key":    signWith(t, claims, jwa.ES384, p384, hdr),
		"missing exp":        signWith(t, with("exp", nil), jwa.ES256, ring.priv, hdr),
		"missing iat":        signWith(t, with("iat", nil), jwa.ES256, ring.priv, hdr),
		"missing jti":        signWith(t, with("jti", nil), jwa.ES256, ring.priv, hdr),
		"missing sub":        signWith(t, with("sub", nil), jwa.ES256, ring.priv, hdr),
		"missing amr":        signWith(t, with("amr", nil), jwa.ES256, ring.priv, hdr),
		"amr not strings":    signWith(t, with("amr", []int{1}), jwa.ES256, ring.priv, hdr),
		"exp is a string":    signWith(t, with("exp", "soon"), jwa.ES256, ring.priv, hdr),
		"wrong iss":          signWith(t, with("iss", "https://evil.example"), jwa.ES256, ring.priv, hdr),
		"wrong aud":          signWith(t, with("aud", []string{"zaimu"}), jwa.ES256, ring.priv, hdr),
		"no aud":             signWith(t, with("aud", nil), jwa.ES256, ring.priv, hdr),
		"wrong typ":          signWith(t, claims, jwa.ES256, ring.priv, withHdr("typ", "JWT")),
		"no typ":             signWith(t, claims, jwa.ES256, ring.priv, withHdr("typ", nil)),
		"iat in the future":  signWith(t, with("iat", clock.Now().Add(time.Hour).Unix()), jwa.ES256, ring.priv, hdr),
		"embedded jwk":       signWith(t, claims, jwa.ES256, other, map[string]any{"kid": kid, "typ": sessionTyp, "jwk": mustJWK(t, &other.PublicKey)}),
	}
	for name, secret := range hmacSecrets {
		for _, alg := range []jwa.SignatureAlgorithm{jwa.HS256, jwa.HS384, jwa.HS512} {
			cases["HMAC with public key as "+name+" "+alg.String()] = signWith(t, claims, alg, secret, hdr)
		}
	}
	// An upstream assertion (other key, typ, aud) is never a cookie; nor
	// is one re-signed with the assertion key under the cookie's typ.
	assertion, err := m.Assertion(c, &store.User{ID: "abe"}, sessionAudience, "2", "chonai")
	if err != nil {
		t.Fatal(err)
	}
	cases["assertion as cookie"] = assertion
	aring := m.assertionKeys.Load()
	cases["assertion key, cookie claims"] = signWith(t, claims, jwa.ES256, aring.priv, map[string]any{"kid": aring.kid, "typ": sessionTyp})
	// JSON serialization of a genuine token.
	cases["JSON serialization"] = string(mustJSONSerialization(t, good))

	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := m.Verify(ctx, tok, "")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify: claims %+v, err = %v; want ErrInvalid", got, err)
			}
		})
	}

	// The genuine token still passes (no test above poisoned the cache).
	if _, err := m.Verify(ctx, good, ""); err != nil {
		t.Fatalf("genuine token: %v", err)
	}
	// A forged token differing only in the kid of a cached one misses the cache.
	if _, err := m.Verify(ctx, tampered, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("tampered after caching the genuine token: %v", err)
	}
}

func mustJWK(t testing.TB, pub *ecdsa.PublicKey) jwk.Key {
	t.Helper()
	k, err := jwk.FromRaw(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustJSONSerialization(t testing.TB, compact string) []byte {
	t.Helper()
	msg, err := jws.Parse([]byte(compact))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verifyWithJWKS verifies an assertion the way an upstream app would: jwx
// against the published JWKS.
func verifyWithJWKS(t testing.TB, m *Manager, tok, aud string) (jwt.Token, error) {
	t.Helper()
	raw, err := m.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwk.Parse(raw)
	if err != nil {
		t.Fatalf("parsing JWKS: %v", err)
	}
	return jwt.ParseString(tok,
		jwt.WithKeySet(set, jws.WithRequireKid(true)),
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(m.now)),
		jwt.WithIssuer(m.issuer),
		jwt.WithAudience(aud),
	)
}

func containsKid(t testing.TB, jwks []byte, kid string) bool {
	t.Helper()
	set, err := jwk.Parse(jwks)
	if err != nil {
		t.Fatal(err)
	}
	_, ok := set.LookupKeyID(kid)
	return ok
}
