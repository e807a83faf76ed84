package authn

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/sekisho/sekisho/store"
)

// Ceremony kinds; each has its own cookie.
const (
	kindLogin    = "login"
	kindRegister = "register"
)

// ceremonyState is what a Begin endpoint hands to its Finish endpoint. It
// travels in a cookie sealed with AES-256-GCM under a key shared through the
// store, so any replica can finish a ceremony another began and the client
// can neither read nor change it.
type ceremonyState struct {
	Kind    string               `json:"k"`
	Session webauthn.SessionData `json:"s"`
	// Origin the ceremony began at; the finish verifies clientDataJSON
	// against exactly this origin.
	Origin  string    `json:"o"`
	Expires time.Time `json:"e"`

	// Login.
	Redirect string `json:"rd,omitempty"`
	StepUp   bool   `json:"su,omitempty"`

	// Registration: the user, and either the invitation's token hash or
	// the session that asked to add a passkey.
	UserID    string `json:"u,omitempty"`
	TokenHash []byte `json:"t,omitempty"`
	SessionID string `json:"sid,omitempty"`
}

// keyUseCeremony is the store.Key use of the ceremony sealing key.
const keyUseCeremony = "ceremony"

// sealer seals ceremony cookies and derives CSRF tokens.
type sealer struct {
	aeads []cipher.AEAD // [0] seals; all open
	mac   []byte        // CSRF token key, derived from the sealing key
}

type octJWK struct {
	Kty string `json:"kty"`
	K   string `json:"k"`
}

// loadSealer reads the ceremony keys from st, creating one when there is
// none. When two replicas race to create it, both keys are kept and every
// replica seals with the oldest, so they converge.
func loadSealer(ctx context.Context, st store.Store, now func() time.Time) (*sealer, error) {
	keys, err := st.ListKeys(ctx, keyUseCeremony)
	if err != nil {
		return nil, fmt.Errorf("reading ceremony keys: %w", err)
	}
	if len(keys) == 0 {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("making ceremony key: %w", err)
		}
		jwk, _ := json.Marshal(octJWK{Kty: "oct", K: base64.RawURLEncoding.EncodeToString(raw)})
		id := make([]byte, 8)
		_, _ = rand.Read(id)
		k := &store.Key{ID: "ceremony-" + base64.RawURLEncoding.EncodeToString(id), Use: keyUseCeremony, JWK: jwk, CreatedAt: now()}
		if err := st.PutKey(ctx, k); err != nil {
			return nil, fmt.Errorf("storing ceremony key: %w", err)
		}
		if keys, err = st.ListKeys(ctx, keyUseCeremony); err != nil {
			return nil, fmt.Errorf("reading ceremony keys: %w", err)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool {
		if !keys[i].CreatedAt.Equal(keys[j].CreatedAt) {
			return keys[i].CreatedAt.Before(keys[j].CreatedAt)
		}
		return keys[i].ID < keys[j].ID
	})
	s := &sealer{}
	for _, k := range keys {
		var j octJWK
		if err := json.Unmarshal(k.JWK, &j); err != nil || j.Kty != "oct" {
			return nil, fmt.Errorf("ceremony key %s: not an oct JWK", k.ID)
		}
		raw, err := base64.RawURLEncoding.DecodeString(j.K)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("ceremony key %s: want 32 bytes", k.ID)
		}
		block, _ := aes.NewCipher(raw)
		aead, _ := cipher.NewGCM(block)
		s.aeads = append(s.aeads, aead)
		if s.mac == nil {
			m := hmac.New(sha256.New, raw)
			m.Write([]byte("sekisho csrf v1"))
			s.mac = m.Sum(nil)
		}
	}
	if len(s.aeads) == 0 {
		return nil, errors.New("no usable ceremony key")
	}
	return s, nil
}

func (s *sealer) seal(kind string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encoding ceremony state: %w", err)
	}
	aead := s.aeads[0]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("making nonce: %w", err)
	}
	out := aead.Seal(nonce, nonce, plain, []byte("sekisho ceremony "+kind))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

var errCeremony = errors.New("ceremony state missing, altered or expired")

func (s *sealer) open(kind, text string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return errCeremony
	}
	for _, aead := range s.aeads {
		if len(raw) < aead.NonceSize() {
			return errCeremony
		}
		plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte("sekisho ceremony "+kind))
		if err != nil {
			continue
		}
		if err := json.Unmarshal(plain, v); err != nil {
			return errCeremony
		}
		return nil
	}
	return errCeremony
}

// csrf returns the form token bound to a session id.
func (s *sealer) csrf(sessionID string) string {
	m := hmac.New(sha256.New, s.mac)
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *sealer) csrfOK(sessionID, token string) bool {
	want := s.csrf(sessionID)
	return len(token) == len(want) && hmac.Equal([]byte(token), []byte(want))
}

// usedSet remembers consumed challenges until they expire, so a sealed
// ceremony cookie finishes at most once on this replica.
type usedSet struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func newUsedSet() *usedSet { return &usedSet{m: map[string]time.Time{}} }

// consume reports whether challenge was unused, and marks it used until exp.
func (u *usedSet) consume(challenge string, exp, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, seen := u.m[challenge]; seen {
		return false
	}
	if len(u.m) >= 1024 && len(u.m)%1024 == 0 {
		for c, e := range u.m {
			if now.After(e) {
				delete(u.m, c)
			}
		}
	}
	u.m[challenge] = exp
	return true
}

func ceremonyCookieName(kind string, secure bool) string {
	if secure {
		return "__Secure-sekisho_" + kind
	}
	return "sekisho_" + kind
}

const ceremonyCookiePath = "/.sekisho/webauthn/"

// beginCeremony seals st into its cookie on w.
func (s *Service) beginCeremony(w http.ResponseWriter, r *http.Request, st *ceremonyState) error {
	st.Expires = s.now().Add(s.timeout)
	v, err := s.seal.seal(st.Kind, st)
	if err != nil {
		return err
	}
	secure := requestScheme(r) == "https"
	http.SetCookie(w, &http.Cookie{
		Name:     ceremonyCookieName(st.Kind, secure),
		Value:    v,
		Path:     ceremonyCookiePath,
		MaxAge:   int(s.timeout / time.Second),
		Secure:   secure,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
	return nil
}

// finishCeremony opens the ceremony cookie of kind, clears it and consumes
// its challenge: whatever happens next, the same state never finishes twice.
func (s *Service) finishCeremony(w http.ResponseWriter, r *http.Request, kind string) (*ceremonyState, error) {
	secure := requestScheme(r) == "https"
	name := ceremonyCookieName(kind, secure)
	http.SetCookie(w, &http.Cookie{Name: name, Path: ceremonyCookiePath, MaxAge: -1, Secure: secure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	c, err := r.Cookie(name)
	if err != nil {
		return nil, fmt.Errorf("%w: no %s cookie", errCeremony, name)
	}
	var st ceremonyState
	if err := s.seal.open(kind, c.Value, &st); err != nil {
		return nil, err
	}
	now := s.now()
	if st.Kind != kind || !now.Before(st.Expires) || st.Session.Challenge == "" {
		return nil, fmt.Errorf("%w: expired at %s", errCeremony, st.Expires.Format(time.RFC3339))
	}
	if origin, err := s.ceremonyOrigin(r); err != nil || origin != st.Origin {
		return nil, fmt.Errorf("%w: finished at another origin than %s", errOrigin, st.Origin)
	}
	if !s.used.consume(st.Session.Challenge, st.Expires, now) {
		return nil, fmt.Errorf("%w: challenge already used", errReplay)
	}
	// The local set answers a replay on this replica at once; the store
	// makes the ceremony finish at most once across all replicas, which
	// the signature counter cannot do for passkeys that always report 0.
	h := sha256.Sum256([]byte(st.Session.Challenge))
	switch err := s.st.ConsumeChallenge(r.Context(), h[:], st.Expires); {
	case errors.Is(err, store.ErrChallengeUsed):
		return nil, fmt.Errorf("%w: challenge already used on another replica", errReplay)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", errUnavailable, err)
	}
	return &st, nil
}

var (
	errReplay = errors.New("replayed ceremony")
	// errUnavailable: the shared store could not be reached; the user can
	// retry later.
	errUnavailable = errors.New("store unavailable")
)

// tokenHash is how invitation tokens are stored.
func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
