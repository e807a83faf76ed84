package authn

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/reqctx"
	"github.com/sekisho/sekisho/store"
)

// Identity is who a request comes from: the verified session and the user
// as the store has it now (roles and department are never taken from the
// cookie). Its Roles, AMR and Claims are shared with the caches they came
// from (clipped, so that an append copies): read them, never change them.
type Identity struct {
	User        string
	DisplayName string
	Department  string
	Roles       []string
	AMR         []string
	AuthTime    time.Time
	ExpiresAt   time.Time
	SessionID   string
	// Device and CertFP are the device certificate the session was issued
	// with ("" when none).
	Device string
	CertFP string
	Claims *session.Claims
	// NeedsRefresh is set when the session cookie should be reissued on
	// this response (see [Service.Refresh]).
	NeedsRefresh bool
}

// Errors of [Service.Identify] besides the session package's (ErrInvalid,
// ErrExpired, ErrRevoked, ErrDeviceMismatch), which it wraps.
var (
	// ErrNoSession: the request carries no session cookie.
	ErrNoSession = errors.New("authn: no session")
	// ErrUserDisabled: the session is valid but its user is disabled.
	ErrUserDisabled = errors.New("authn: user disabled")
	// ErrUnknownUser: the session names a user the store does not have.
	ErrUnknownUser = errors.New("authn: unknown user")
)

// Identify verifies the session cookie of r, bound to the device
// certificate the proxy recorded in reqctx.Info, and reads its user through
// a cache of at most one second. It does not write to the response; call
// [Service.Refresh] afterwards when Identity.NeedsRefresh is set.
func (s *Service) Identify(r *http.Request) (*Identity, error) {
	claims, err := s.verifyCookie(r)
	if err != nil {
		return nil, err
	}
	u, err := s.users.get(r.Context(), claims.User)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownUser, claims.User)
	} else if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, fmt.Errorf("%w: %s", ErrUserDisabled, u.ID)
	}
	return &Identity{
		User:         u.ID,
		DisplayName:  u.DisplayName,
		Department:   u.Department,
		Roles:        slices.Clip(u.Roles),
		AMR:          slices.Clip(claims.AMR),
		AuthTime:     claims.AuthTime,
		ExpiresAt:    claims.ExpiresAt,
		SessionID:    claims.ID,
		Device:       claims.Device,
		CertFP:       claims.CertFP,
		Claims:       claims,
		NeedsRefresh: s.sm.NeedsRefresh(claims),
	}, nil
}

// verifyCookie returns the verified claims of r's session cookie.
func (s *Service) verifyCookie(r *http.Request) (*session.Claims, error) {
	value, ok := cookieValue(r.Header, s.sm.CookieName(requestScheme(r) == "https"))
	if !ok || value == "" {
		return nil, ErrNoSession
	}
	certFP := ""
	if info := reqctx.From(r.Context()); info != nil && info.CertError == "" {
		certFP = info.CertFP
	}
	claims, err := s.sm.Verify(r.Context(), value, certFP)
	if err != nil {
		return nil, fmt.Errorf("verifying session cookie: %w", err)
	}
	return claims, nil
}

// Refresh reissues id's session cookie on w when id.NeedsRefresh is set
// (the session manager decides when: sliding idle expiry). Call it before
// the response header is written. It is a no-op otherwise.
func (s *Service) Refresh(w http.ResponseWriter, r *http.Request, id *Identity) error {
	if id == nil || !id.NeedsRefresh || id.Claims == nil {
		return nil
	}
	c := *id.Claims
	c.LastSeen = s.now()
	token, err := s.sm.Issue(r.Context(), &c)
	if err != nil {
		return fmt.Errorf("refreshing session %s: %w", id.SessionID, err)
	}
	s.sm.SetCookie(w, token, &c)
	id.NeedsRefresh = false
	return nil
}

// currentURL is the URL the client asked for, to come back to after login.
func currentURL(r *http.Request) string {
	return requestScheme(r) + "://" + r.Host + r.URL.RequestURI()
}

// RequireLogin answers a request that has no valid session: a browser
// (Accept: text/html) is sent with 303 to the login page, which brings it
// back here afterwards; an API client gets 401 with a JSON body.
func (s *Service) RequireLogin(w http.ResponseWriter, r *http.Request) {
	s.requireLogin(w, r, false, nil)
}

// RequireStepUp answers a request whose session is too old or too weak for
// the asset class: like RequireLogin, with user verification forced on the
// login page. reasons are the policy's reasons, given to API clients.
func (s *Service) RequireStepUp(w http.ResponseWriter, r *http.Request, reasons []string) {
	s.requireLogin(w, r, true, reasons)
}

func (s *Service) requireLogin(w http.ResponseWriter, r *http.Request, stepup bool, reasons []string) {
	target := PathLogin + "?rd=" + url.QueryEscape(currentURL(r))
	key := "err_login_required"
	if stepup {
		target += "&stepup=1"
		key = "err_stepup_required"
	}
	w.Header().Set("Cache-Control", "no-store")
	if acceptsHTML(r) {
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	lang := s.pages.lang(r)
	body := map[string]any{"error": strings.TrimPrefix(key, "err_"), "message": translate(lang, key), "login": target}
	if len(reasons) > 0 {
		body["reasons"] = reasons
	}
	writeJSON(w, http.StatusUnauthorized, body)
}

// Assertion signs the X-Sekisho-Assertion JWT for id towards aud (the
// route). Roles come from the store as Identify read them.
func (s *Service) Assertion(id *Identity, aud, class, zone string) (string, error) {
	if id == nil || id.Claims == nil {
		return "", errors.New("authn: assertion without identity")
	}
	u := &store.User{ID: id.User, DisplayName: id.DisplayName, Department: id.Department, Roles: id.Roles}
	tok, err := s.sm.Assertion(id.Claims, u, aud, class, zone)
	if err != nil {
		return "", fmt.Errorf("signing assertion for %s: %w", id.User, err)
	}
	return tok, nil
}

// me serves GET /.sekisho/me.
func (s *Service) me(w http.ResponseWriter, r *http.Request) {
	id, err := s.Identify(r)
	if err != nil {
		s.fail(w, r, &httpError{Code: http.StatusUnauthorized, Key: "err_login_required", Err: err})
		return
	}
	if err := s.Refresh(w, r, id); err != nil {
		s.log.WarnContext(r.Context(), "refreshing session", "err", err)
	}
	roles := id.Roles
	if roles == nil {
		roles = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user":         id.User,
		"display_name": id.DisplayName,
		"department":   id.Department,
		"roles":        roles,
		"amr":          id.AMR,
		"device":       id.Device,
		"auth_time":    id.AuthTime.UTC().Format(time.RFC3339),
		"expiry":       id.ExpiresAt.UTC().Format(time.RFC3339),
	})
}

// jwks serves GET /.well-known/sekisho/jwks.json.
func (s *Service) jwks(w http.ResponseWriter, r *http.Request) {
	b, err := s.sm.JWKS()
	if err != nil {
		s.fail(w, r, fmt.Errorf("building JWKS: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
}
