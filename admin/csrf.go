package admin

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Form tokens. A CSRF token is HMAC-SHA256(key, "csrf", session id): it is
// the same for every form of one session, unguessable without the key, and
// worthless in any other session. A confirmation token binds the second
// step of the kill switch to what the confirmation page showed (kind,
// subject, reason) and expires, so a revocation cannot be posted without
// the page that repeats what will happen.

func (c *Console) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, c.d.CSRFKey)
	for _, p := range parts {
		m.Write([]byte(strconv.Itoa(len(p))))
		m.Write([]byte{':'})
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// csrfToken is the form token of a session.
func (c *Console) csrfToken(sessionID string) string {
	if sessionID == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(c.mac("csrf", sessionID))
}

func (c *Console) validCSRF(sessionID, token string) bool {
	if sessionID == "" || token == "" {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return false
	}
	return hmac.Equal(got, c.mac("csrf", sessionID))
}

// confirmTTL is how long a confirmation page may be left open.
const confirmTTL = 10 * time.Minute

// confirmToken binds a revocation's confirmation to the session and to
// exactly what was shown.
func (c *Console) confirmToken(sessionID, kind, subject, reason string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return exp + "." + base64.RawURLEncoding.EncodeToString(c.mac("confirm", sessionID, kind, subject, reason, exp))
}

func (c *Console) validConfirm(sessionID, kind, subject, reason, token string, now time.Time) bool {
	exp, sig, ok := strings.Cut(token, ".")
	if !ok || sessionID == "" {
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || now.After(time.Unix(unix, 0)) {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, c.mac("confirm", sessionID, kind, subject, reason, exp))
}
