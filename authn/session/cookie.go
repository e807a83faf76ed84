package session

import (
	"net/http"
	"time"
)

// cookieName is the session cookie's name. The __Host- prefix makes
// browsers insist on Secure, Path=/ and no Domain, so a sibling host cannot
// plant or widen it.
const cookieName = "__Host-sekisho"

// CookieName returns the session cookie's name. sekisho serves only secure
// contexts — TLS, or http://localhost, which browsers treat as secure and
// where they accept Secure and __Host- cookies — so the name is
// "__Host-sekisho" whatever secure says; the parameter keeps call sites
// honest about where they stand.
func (m *Manager) CookieName(secure bool) string { return cookieName }

// SetCookie sets the session cookie: Secure, HttpOnly, SameSite=Lax,
// Path=/, living until the session's absolute expiry (the idle timeout is
// enforced by Verify).
func (m *Manager) SetCookie(w http.ResponseWriter, token string, c *Claims) {
	maxAge := int(c.ExpiresAt.Sub(m.now()) / time.Second)
	if maxAge <= 0 {
		m.ClearCookie(w)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    token,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

// ClearCookie removes the session cookie from the browser.
func (m *Manager) ClearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}
