package attack

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/internal/apptest"
	"github.com/sekisho/sekisho/store"
)

var b64 = base64.RawURLEncoding

// jwtParts splits a compact JWS and decodes its header and payload.
func jwtParts(t *testing.T, tok string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		b, err := b64.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, payload
}

// forge builds a compact JWS with the given header and payload, signed
// with HMAC-SHA256 under key (nil: no signature, as alg "none" has).
func forge(header, payload map[string]any, key []byte) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	in := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	if key == nil {
		return in + "."
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + b64.EncodeToString(m.Sum(nil))
}

// expectLogin sends cookie to host/path and asserts the login redirect, no
// forwarding and an audit record denying the request.
func expectLogin(t *testing.T, w *apptest.World, what, cookie string, get func(cookie string) apptest.Response) {
	t.Helper()
	before := len(w.Seen())
	r := get(cookie)
	if r.Status != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "/.sekisho/login") {
		t.Errorf("%s: status %d Location %q, want 303 to login", what, r.Status, r.Header.Get("Location"))
		return
	}
	if n := len(w.Seen()); n != before {
		t.Errorf("%s: forwarded to the upstream", what)
	}
	rec := decisionRecord(t, w, rid(t, r))
	if rec.Decision != audit.DecisionDeny || rec.User != "" {
		t.Errorf("%s: audit decision %q user %q reasons %v, want an anonymous deny", what, rec.Decision, rec.User, rec.Reasons)
	}
}

// TestForgedSessions: every way of making a cookie without sekisho's key
// is refused — edits, alg "none", HS256 keyed with the published public
// key (the RS/HS and ES/HS confusion of CVE-2015-9235 and friends), a
// token signed for another purpose (the upstream assertion), garbage.
func TestForgedSessions(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	good := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	get := func(c string) apptest.Response { return w.Get(zaimu, "/public", c, nil) }
	if r := get(good); r.Status != 200 {
		t.Fatalf("the genuine cookie does not work: %d", r.Status)
	}
	header, payload := jwtParts(t, good)
	parts := strings.Split(good, ".")

	// The public keys, as an attacker fetches them.
	jr := w.Get(zaimu, "/.well-known/sekisho/jwks.json", "", nil)
	if jr.Status != 200 {
		t.Fatalf("jwks: %d", jr.Status)
	}
	set, err := jwk.Parse([]byte(jr.Body))
	if err != nil {
		t.Fatalf("parsing JWKS: %v", err)
	}
	var secrets [][]byte
	var kids []string
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		kids = append(kids, k.KeyID())
		kj, _ := json.Marshal(k)
		secrets = append(secrets, kj)
		var raw any
		if err := k.Raw(&raw); err == nil {
			if der, err := x509.MarshalPKIXPublicKey(raw); err == nil {
				secrets = append(secrets, der, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			}
		}
	}
	if len(secrets) == 0 {
		t.Fatal("JWKS has no keys")
	}
	kids = append(kids, header["kid"].(string))

	// Elevate: claim to be tanaka.
	evil := map[string]any{}
	for k, v := range payload {
		evil[k] = v
	}
	evil["sub"] = "tanaka"

	cases := map[string]string{
		"payload edited, signature kept": parts[0] + "." + b64.EncodeToString(mustJSON(evil)) + "." + parts[2],
		"signature truncated":            good[:len(good)-4],
		"signature bit flipped":          flipLast(good),
		"signature removed":              parts[0] + "." + parts[1] + ".",
		"two signatures":                 good + "." + parts[2],
		"garbage":                        "not-a-jwt",
		"empty parts":                    "..",
		"JSON serialisation":             `{"payload":"` + parts[1] + `","signatures":[{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"}]}`,
	}
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		h := map[string]any{"alg": alg, "typ": header["typ"], "kid": header["kid"]}
		cases["alg "+alg] = forge(h, evil, nil)
		cases["alg "+alg+" unchanged payload"] = forge(h, payload, nil)
	}
	for i, sec := range secrets {
		for _, kid := range kids {
			h := map[string]any{"alg": "HS256", "typ": header["typ"], "kid": kid}
			cases["HS256 with public key "+string(rune('a'+i))+" kid "+kid] = forge(h, evil, sec)
		}
	}
	// The header's kid pointing somewhere else, jku/x5u/jwk embedded keys.
	for _, extra := range []map[string]any{
		{"jku": "https://evil.example/jwks.json"},
		{"x5u": "https://evil.example/cert.pem"},
		{"kid": "../../../../dev/null"},
		{"kid": "' OR '1'='1"},
	} {
		h := map[string]any{"alg": "HS256", "typ": header["typ"], "kid": header["kid"]}
		for k, v := range extra {
			h[k] = v
		}
		cases["header "+mustString(extra)] = forge(h, evil, []byte(""))
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) { expectLogin(t, w, name, c, get) })
	}

	// The upstream assertion is signed by sekisho too, for another
	// audience and purpose: replayed as a cookie it is worthless.
	seen := w.Seen()
	if len(seen) == 0 {
		t.Fatal("no upstream request to take an assertion from")
	}
	assertion := seen[len(seen)-1].Header.Get("X-Sekisho-Assertion")
	if assertion == "" {
		t.Fatal("no assertion upstream")
	}
	t.Run("assertion replayed as cookie", func(t *testing.T) { expectLogin(t, w, "assertion as cookie", assertion, get) })
	if res := w.Verify(); !res.OK() {
		t.Errorf("trail: %v", res.Err())
	}
}

func mustJSON(v any) []byte   { b, _ := json.Marshal(v); return b }
func mustString(v any) string { return string(mustJSON(v)) }

func flipLast(tok string) string {
	parts := strings.Split(tok, ".")
	sig, _ := b64.DecodeString(parts[2])
	sig[len(sig)/2] ^= 1
	return parts[0] + "." + parts[1] + "." + b64.EncodeToString(sig)
}

// TestSessionLifecycle: expired, revoked (session, user, all) and disabled
// users' cookies are refused on the next request.
func TestSessionLifecycle(t *testing.T) {
	w := apptest.Start(t, apptest.Options{Extra: "session: {lifetime: 3s, idle: 30m}"})
	get := func(c string) apptest.Response { return w.Get(zaimu, "/public", c, nil) }
	ctx := context.Background()

	issued := time.Now()
	expiring := w.Login("suzuki", apptest.UV, 0, "", "")
	bySession := w.Login("suzuki", apptest.UV, 0, "", "")
	byUser := w.Login("tanaka", apptest.UV, 0, "", "")
	for _, c := range []string{expiring, bySession, byUser} {
		if r := get(c); r.Status != 200 {
			t.Fatalf("fresh cookie refused: %d", r.Status)
		}
	}
	_, p := jwtParts(t, bySession)
	if err := w.App.Revoke(ctx, &store.Revocation{Kind: store.RevokeSession, Subject: p["jti"].(string), By: "csirt", Reason: "stolen cookie"}); err != nil {
		t.Fatal(err)
	}
	expectLogin(t, w, "revoked session", bySession, get)
	if err := w.App.Revoke(ctx, &store.Revocation{Kind: store.RevokeUser, Subject: "tanaka", By: "csirt", Reason: "stolen credentials"}); err != nil {
		t.Fatal(err)
	}
	expectLogin(t, w, "revoked user", byUser, get)
	// A session of tanaka made after the revocation is fine again (the
	// kill switch is "sessions issued before now").
	time.Sleep(1100 * time.Millisecond) // token times are whole seconds
	if r := get(w.Login("tanaka", apptest.UV, 0, "", "")); r.Status != 200 {
		t.Errorf("new session after user revocation: %d", r.Status)
	}
	time.Sleep(time.Until(issued.Add(3500 * time.Millisecond)))
	expectLogin(t, w, "expired session", expiring, get)
}

// TestDeviceBinding: a cookie issued on a device (bound to its certificate)
// is worthless without that certificate — the stolen-cookie case.
func TestDeviceBinding(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	pc, fp := w.Device("PC-0001", "suzuki")
	other, _ := w.Device("PC-0002", "suzuki")
	foreign, _ := w.Device("PC-0003", "tanaka")
	bound := w.Login("suzuki", append(apptest.UV, "mtls"), time.Minute, "PC-0001", fp)

	if r := w.Get(zaimu, "/public", bound, &pc); r.Status != 200 {
		t.Fatalf("bound cookie with its device: %d", r.Status)
	}
	expectLogin(t, w, "bound cookie without a certificate", bound, func(c string) apptest.Response { return w.Get(zaimu, "/public", c, nil) })
	expectLogin(t, w, "bound cookie with another device of the same user", bound, func(c string) apptest.Response { return w.Get(zaimu, "/public", c, &other) })
	expectLogin(t, w, "bound cookie with another user's device", bound, func(c string) apptest.Response { return w.Get(zaimu, "/public", c, &foreign) })
	// Over the plain listener no certificate can be presented at all.
	r := w.Raw(raw("GET", "/public", zaimu, bound))
	if r.Status != http.StatusSeeOther {
		t.Errorf("bound cookie over plain HTTP: %d", r.Status)
	}
	decisionRecord(t, w, rid(t, r))
}

// TestAssertionScope: the assertion an upstream receives names that route
// as its audience and lives briefly, so a compromised upstream cannot
// replay it to another route's upstream or keep it.
func TestAssertionScope(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	pc, fp := w.Device("PC-0300", "sato")
	zr := w.Get(zaimu, "/public", w.Login("suzuki", apptest.UV, time.Minute, "", ""), nil)
	jr := w.Get(juki, "/records", w.Login("sato", append(apptest.UV, "mtls"), time.Minute, "PC-0300", fp), &pc)
	if zr.Status != 200 || jr.Status != 200 {
		t.Fatalf("controls: %d %d", zr.Status, jr.Status)
	}
	for route, r := range map[string]apptest.Response{"zaimu": zr, "juki": jr} {
		s, ok := seenByID(w, r.Header.Get("X-Request-Id"))
		if !ok {
			t.Fatalf("%s: not forwarded", route)
		}
		_, claims := jwtParts(t, s.Header.Get("X-Sekisho-Assertion"))
		aud := fmt.Sprint(claims["aud"])
		if !strings.Contains(aud, route) || strings.Contains(aud, map[string]string{"zaimu": "juki", "juki": "zaimu"}[route]) {
			t.Errorf("%s: assertion aud %v", route, claims["aud"])
		}
		exp, _ := claims["exp"].(float64)
		iat, _ := claims["iat"].(float64)
		if exp == 0 || iat == 0 || exp-iat > 300 {
			t.Errorf("%s: assertion lives %v s", route, exp-iat)
		}
		if claims["jti"] == nil || claims["sub"] == nil {
			t.Errorf("%s: assertion lacks jti or sub: %v", route, claims)
		}
	}
}
