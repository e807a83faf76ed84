package session

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/sekisho/sekisho/store"
)

// fuzzManager is a Manager whose session key is the fixed test key in
// testdata, at a fixed time, so that the seed corpus under
// testdata/fuzz/FuzzVerify holds tokens that are genuinely valid.
func fuzzManager(t testing.TB) (*Manager, *store.Key) {
	t.Helper()
	raw, err := os.ReadFile("testdata/fuzz-session-key.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsePrivate(raw); err != nil {
		t.Fatal(err)
	}
	kid := fixedKid(t, raw)
	clock := newFakeClock()
	st := openStore(t, "")
	key := &store.Key{ID: kid, Use: useSession, JWK: raw, CreatedAt: clock.Now().Add(-time.Hour), NotAfter: clock.Now().Add(23 * time.Hour)}
	if err := st.PutKey(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.WebAuthn.RPID = "gw.example.lg.jp"
	m := newManager(t, cfg, clock, st)
	if m.sessionKeys.Load().kid != kid {
		t.Fatalf("fuzz manager signs with %s, want the fixed key %s", m.sessionKeys.Load().kid, kid)
	}
	return m, key
}

func fixedKid(t testing.TB, raw []byte) string {
	t.Helper()
	const tag = `"kid": "`
	i := strings.Index(string(raw), tag)
	if i < 0 {
		t.Fatal("fixed key has no kid")
	}
	rest := string(raw)[i+len(tag):]
	return rest[:strings.IndexByte(rest, '"')]
}

// FuzzVerify feeds arbitrary cookies to Verify: it must never panic, every
// error must be one of the sentinels, and it must never return claims for
// a token that is not an ES256 signature by our session key.
func FuzzVerify(f *testing.F) {
	m, key := fuzzManager(f)
	priv, err := parsePrivate(key.JWK)
	if err != nil {
		f.Fatal(err)
	}
	good := issue(f, m, &Claims{User: "fuzz", AMR: []string{"hwk", "uv"}, Device: "pc-1", CertFP: fp1})
	f.Add(good, fp1)
	f.Add(good, "")
	parts := strings.Split(good, ".")
	f.Add(parts[0]+"."+parts[1]+".", "")
	f.Add(strings.Repeat(".", 3), "")

	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token, certFP string) {
		c, err := m.Verify(ctx, token, certFP)
		if err != nil {
			if c != nil {
				t.Fatalf("claims returned with error %v", err)
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExpired) && !errors.Is(err, ErrRevoked) && !errors.Is(err, ErrDeviceMismatch) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		// Accepted: it must verify, independently, as ES256 by our key.
		msg, err := jws.Parse([]byte(token))
		if err != nil {
			t.Fatalf("accepted token does not parse as JWS: %v", err)
		}
		if len(msg.Signatures()) != 1 || msg.Signatures()[0].ProtectedHeaders().Algorithm() != jwa.ES256 {
			t.Fatalf("accepted token is not one ES256 signature: %q", token)
		}
		if _, err := jws.Verify([]byte(token), jws.WithKey(jwa.ES256, &priv.PublicKey)); err != nil {
			t.Fatalf("accepted token not signed by our key: %v", err)
		}
		if c.User == "" || c.ID == "" {
			t.Fatalf("accepted token with empty user or id: %+v", c)
		}
	})
}

// TestFuzzSeedsValid keeps the seed corpus meaningful: its genuine tokens
// must still verify under the fixed key and clock.
func TestFuzzSeedsValid(t *testing.T) {
	m, _ := fuzzManager(t)
	for name, wantErr := range map[string]error{"valid-bound": nil, "valid-unbound": nil, "bound-no-cert": ErrDeviceMismatch, "tampered": ErrInvalid, "alg-none": ErrInvalid, "assertion": ErrInvalid} {
		raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzVerify", name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(raw), "\n")
		tok, err1 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
		fp, err2 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[2], "string("), ")"))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: malformed seed file", name)
		}
		_, err = m.Verify(context.Background(), tok, fp)
		if (wantErr == nil && err != nil) || !errors.Is(err, wantErr) {
			t.Errorf("seed %s: err = %v, want %v", name, err, wantErr)
		}
	}
}
