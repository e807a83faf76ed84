package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/sekisho/sekisho/store"
)

func TestAssertion(t *testing.T) {
	clock := newFakeClock()
	m := newManager(t, nil, clock, nil)
	c := &Claims{User: "ogawa", AMR: []string{"hwk", "uv", "mtls"}, Device: "pc-12", CertFP: fp1}
	issue(t, m, c)
	u := &store.User{ID: "ogawa", Roles: []string{"jinji", "kacho"}, Department: "総務課"}

	tok, err := m.Assertion(c, u, "jinji", "3B", "chonai")
	if err != nil {
		t.Fatal(err)
	}
	hdr := headerOf(t, tok)
	if hdr["alg"] != "ES256" || hdr["kid"] != m.assertionKeys.Load().kid {
		t.Errorf("header = %v, want ES256 with the assertion kid", hdr)
	}
	parsed, err := verifyWithJWKS(t, m, tok, "jinji")
	if err != nil {
		t.Fatalf("verifying the assertion against the JWKS: %v", err)
	}
	now := clock.Now().Truncate(time.Second)
	got := map[string]any{
		"iss": parsed.Issuer(), "aud": parsed.Audience(), "sub": parsed.Subject(),
		"iat": parsed.IssuedAt(), "exp": parsed.Expiration(),
	}
	want := map[string]any{
		"iss": "https://gw.example.lg.jp", "aud": []string{"jinji"}, "sub": "ogawa",
		"iat": now, "exp": now.Add(60 * time.Second),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("registered claims (-want +got):\n%s", diff)
	}
	if parsed.JwtID() == "" {
		t.Error("jti missing")
	}
	priv := parsed.PrivateClaims()
	wantPriv := map[string]any{
		"amr": []any{"hwk", "uv", "mtls"}, "roles": []any{"jinji", "kacho"},
		"device": "pc-12", "class": "3B", "zone": "chonai",
	}
	if diff := cmp.Diff(wantPriv, priv); diff != "" {
		t.Errorf("private claims (-want +got):\n%s", diff)
	}
	// Another route's upstream refuses it.
	if _, err := verifyWithJWKS(t, m, tok, "zaimu"); err == nil {
		t.Error("assertion for jinji accepted with aud zaimu")
	}

	t.Run("cache", func(t *testing.T) {
		same, _ := m.Assertion(c, u, "jinji", "3B", "chonai")
		if same != tok {
			t.Error("second assertion within a third of its lifetime was re-signed")
		}
		other, _ := m.Assertion(c, u, "jinji", "3B", "telework")
		if other == tok {
			t.Error("assertion for another zone came from the cache")
		}
		moved := *u
		moved.Roles = []string{"zaimu"}
		changed, _ := m.Assertion(c, &moved, "jinji", "3B", "chonai")
		if changed == tok {
			t.Error("assertion after a role change came from the cache")
		}
		clock.Advance(21 * time.Second)
		later, _ := m.Assertion(c, &moved, "jinji", "3B", "chonai")
		if later == changed {
			t.Error("assertion older than a third of its lifetime was reused")
		}
	})

	t.Run("expired assertion refused upstream", func(t *testing.T) {
		clock.Advance(2 * time.Minute)
		if _, err := verifyWithJWKS(t, m, tok, "jinji"); err == nil {
			t.Error("expired assertion verified")
		}
	})

	if _, err := m.Assertion(c, &store.User{ID: "someone-else"}, "jinji", "3B", "chonai"); err == nil {
		t.Error("assertion with a user record of another user succeeded")
	}
}

func TestJWKS(t *testing.T) {
	m := newManager(t, nil, newFakeClock(), nil)
	raw, err := m.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwk.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 1 {
		t.Fatalf("JWKS has %d keys, want 1", set.Len())
	}
	k, _ := set.Key(0)
	if isPriv, _ := jwk.IsPrivateKey(k); isPriv {
		t.Fatal("JWKS publishes a private key")
	}
	if k.KeyID() != m.assertionKeys.Load().kid || k.Algorithm().String() != "ES256" {
		t.Errorf("JWKS key kid=%s alg=%s, want the assertion kid and ES256", k.KeyID(), k.Algorithm())
	}
	if _, ok := set.LookupKeyID(m.sessionKeys.Load().kid); ok {
		t.Error("JWKS publishes the session cookie key")
	}
}

func TestCookie(t *testing.T) {
	clock := newFakeClock()
	m := newManager(t, nil, clock, nil)
	c := &Claims{User: "ueda", AMR: []string{"hwk"}}
	tok := issue(t, m, c)
	clock.Advance(20 * time.Minute)

	w := httptest.NewRecorder()
	m.SetCookie(w, tok, c)
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("got %d cookies", len(cookies))
	}
	got := cookies[0]
	want := &http.Cookie{Name: "__Host-sekisho", Value: tok, Path: "/", MaxAge: 9*3600 + 40*60, Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Raw: got.Raw}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cookie (-want +got):\n%s", diff)
	}
	for _, secure := range []bool{true, false} {
		if n := m.CookieName(secure); n != "__Host-sekisho" {
			t.Errorf("CookieName(%v) = %q", secure, n)
		}
	}
	// The browser sends it back; the request side reads the same name.
	r := httptest.NewRequest("GET", "https://zaimu.gw.example.lg.jp/", nil)
	r.AddCookie(&http.Cookie{Name: got.Name, Value: got.Value})
	rc, err := r.Cookie(m.CookieName(true))
	if err != nil || rc.Value != tok {
		t.Fatalf("reading the cookie back: %v", err)
	}
	if _, err := m.Verify(context.Background(), rc.Value, ""); err != nil {
		t.Fatalf("Verify of the cookie value: %v", err)
	}

	w = httptest.NewRecorder()
	m.ClearCookie(w)
	if h := w.Header().Get("Set-Cookie"); h != "__Host-sekisho=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax" {
		t.Errorf("ClearCookie Set-Cookie = %q", h)
	}
}
