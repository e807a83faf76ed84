//go:build fuzzseeds

package session

// The seed writer runs only when asked for:
//
//	go test -tags fuzzseeds -run TestWriteFuzzSeeds .

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/sekisho/sekisho/store"
)

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzVerify (go test -tags
// fuzzseeds -run TestWriteFuzzSeeds ./authn/session): genuine tokens under
// the fixed key and the classic forgeries of them.
func TestWriteFuzzSeeds(t *testing.T) {
	m, key := fuzzManager(t)
	priv, err := parsePrivate(key.JWK)
	if err != nil {
		t.Fatal(err)
	}
	c := &Claims{User: "tanaka", AMR: []string{"hwk", "uv", "mtls"}, Device: "pc-0042", CertFP: fp1}
	good := issue(t, m, c)
	plain := issue(t, m, &Claims{User: "sato", AMR: []string{"hwk"}})
	assertion, err := m.Assertion(c, &store.User{ID: "tanaka", Roles: []string{"zaimu"}}, "zaimu", "2", "chonai")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	claims := payloadOf(t, good)
	hdr := map[string]any{"kid": key.ID, "typ": sessionTyp}
	pubJSON, _ := publicJWK(key.ID, &priv.PublicKey)
	pubBytes := []byte(fmt.Sprint(pubJSON))
	seeds := map[string][2]string{
		"valid-bound":     {good, fp1},
		"valid-unbound":   {plain, ""},
		"bound-no-cert":   {good, ""},
		"tampered":        {parts[0] + "." + b64json(t, map[string]any{"sub": "admin", "jti": "x", "exp": 4102444800}) + "." + parts[2], ""},
		"alg-none":        {b64json(t, map[string]any{"alg": "none", "kid": key.ID, "typ": sessionTyp}) + "." + parts[1] + ".", ""},
		"hs256-pubkey":    {signWith(t, claims, jwa.HS256, pubBytes, hdr), ""},
		"unknown-kid":     {signWith(t, claims, jwa.ES256, priv, map[string]any{"kid": "nope", "typ": sessionTyp}), ""},
		"assertion":       {assertion, ""},
		"json-serialized": {string(mustJSONSerialization(t, good)), ""},
		"truncated-sig":   {good[:len(good)-10], ""},
		"bad-base64":      {parts[0] + ".!!!." + parts[2], ""},
		"header-only":     {parts[0], ""},
		"empty":           {"", ""},
		"nested-jwe":      {"eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4R0NNIn0..a.b.c", ""},
		"sig-padding":     {good + "==", ""},
		"header-b64url":   {base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"`+key.ID+`","typ":"`+sessionTyp+`","crit":["b64"],"b64":false}`)) + "." + parts[1] + "." + parts[2], ""},
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range seeds {
		body := "go test fuzz v1\nstring(" + strconv.Quote(s[0]) + ")\nstring(" + strconv.Quote(s[1]) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
