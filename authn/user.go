package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/sekisho/sekisho/store"
)

// waUser adapts a store user and credentials to webauthn.User.
type waUser struct {
	rpID  string
	u     *store.User
	creds []webauthn.Credential
}

var _ webauthn.User = (*waUser)(nil)

func newWAUser(rpID string, u *store.User, creds []*store.Credential) *waUser {
	w := &waUser{rpID: rpID, u: u}
	for _, c := range creds {
		w.creds = append(w.creds, toWACredential(c))
	}
	return w
}

// userHandle is the WebAuthn user handle of a user id: a hash, so that the
// authenticator does not hold the staff id itself, and stable for as long
// as the RP id is. At login the user is found by credential id; the handle
// is only compared.
func userHandle(rpID, userID string) []byte {
	h := sha256.Sum256([]byte("sekisho user handle\x00" + strings.ToLower(rpID) + "\x00" + userID))
	return h[:]
}

func (w *waUser) WebAuthnID() []byte                         { return userHandle(w.rpID, w.u.ID) }
func (w *waUser) WebAuthnName() string                       { return w.u.ID }
func (w *waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }
func (w *waUser) WebAuthnDisplayName() string {
	if w.u.DisplayName != "" {
		return w.u.DisplayName
	}
	return w.u.ID
}

func toWACredential(c *store.Credential) webauthn.Credential {
	var flags protocol.AuthenticatorFlags
	if c.UserPresent {
		flags |= protocol.FlagUserPresent
	}
	if c.UserVerified {
		flags |= protocol.FlagUserVerified
	}
	if c.BackupEligible {
		flags |= protocol.FlagBackupEligible
	}
	if c.BackupState {
		flags |= protocol.FlagBackupState
	}
	transports := make([]protocol.AuthenticatorTransport, 0, len(c.Transports))
	for _, t := range c.Transports {
		transports = append(transports, protocol.AuthenticatorTransport(t))
	}
	return webauthn.Credential{
		ID:              c.ID,
		PublicKey:       c.PublicKey,
		AttestationType: c.AttestationType,
		Transport:       transports,
		Flags:           webauthn.NewCredentialFlags(flags),
		Authenticator: webauthn.Authenticator{
			AAGUID:       c.AAGUID,
			SignCount:    c.SignCount,
			CloneWarning: c.CloneWarning,
		},
	}
}

// parseAAGUID reads an AAGUID in UUID text form.
func parseAAGUID(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(s), "-", ""))
	if err != nil || len(b) != 16 {
		return nil, fmt.Errorf("want a UUID such as 08987058-cadc-4b81-b6e1-30de50dcbe96")
	}
	return b, nil
}

func formatAAGUID(b []byte) string {
	if len(b) != 16 {
		return hex.EncodeToString(b)
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// userCache keeps users read from the store for at most userCacheTTL, so
// that a role change or a disabled account applies within a second on
// every replica while a busy gateway does not read the store per request.
// lru.Cache locks itself; no lock of its own is needed around it.
type userCache struct {
	st  store.Store
	now func() time.Time
	c   *lru.Cache[string, cachedUser]
}

type cachedUser struct {
	u  *store.User
	at time.Time
}

// userCacheTTL is the longest a stale user (roles, department, disabled)
// is believed. Keep it at or below one second: DESIGN.md promises a
// personnel change applies on the next request.
const userCacheTTL = time.Second

func newUserCache(st store.Store, now func() time.Time) (*userCache, error) {
	c, err := lru.New[string, cachedUser](16384)
	if err != nil {
		return nil, fmt.Errorf("making user cache: %w", err)
	}
	return &userCache{st: st, now: now, c: c}, nil
}

func (c *userCache) get(ctx context.Context, id string) (*store.User, error) {
	now := c.now()
	e, ok := c.c.Get(id)
	if ok && now.Sub(e.at) < userCacheTTL && !now.Before(e.at) {
		return e.u, nil
	}
	u, err := c.st.GetUser(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading user %s: %w", id, err)
	}
	c.c.Add(id, cachedUser{u: u, at: now})
	return u, nil
}

// forget drops id so the next request reads it afresh.
func (c *userCache) forget(id string) {
	c.c.Remove(id)
}
