package authn

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/reqctx"
	"github.com/sekisho/sekisho/store"
)

type loginPageData struct {
	Redirect  string
	StepUp    bool
	Enrolled  bool
	LoggedOut bool
}

// loginPage serves GET /.sekisho/login?rd=URL[&stepup=1]. An rd that is not
// a safe target is replaced by the account page (see checkRedirect).
func (s *Service) loginPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := loginPageData{
		Redirect:  s.safeRedirect(r, q.Get("rd")),
		StepUp:    q.Get("stepup") == "1",
		Enrolled:  q.Get("enrolled") == "1",
		LoggedOut: q.Get("logged_out") == "1",
	}
	// Someone already signed in (a bookmark, the back button) goes on to
	// rd; a step-up always shows the page.
	if !d.StepUp && !d.LoggedOut {
		if _, err := s.Identify(r); err == nil {
			http.Redirect(w, r, d.Redirect, http.StatusSeeOther)
			return
		}
	}
	title := "title_login"
	if d.StepUp {
		title = "title_stepup"
	}
	s.render(w, r, http.StatusOK, "login", title, d)
}

// loginBeginRequest is the optional body of login/begin.
type loginBeginRequest struct {
	Redirect string `json:"rd"`
	StepUp   bool   `json:"stepup"`
}

// loginBegin answers POST /.sekisho/webauthn/login/begin with
// {"publicKey": PublicKeyCredentialRequestOptions} for a discoverable
// login (no user name, empty allowCredentials).
func (s *Service) loginBegin(w http.ResponseWriter, r *http.Request) error {
	body, herr := readBody(r)
	if herr != nil {
		return herr
	}
	var req loginBeginRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return &httpError{Code: http.StatusBadRequest, Key: "err_bad_request", Err: fmt.Errorf("decoding login begin: %w", err)}
		}
	}
	if r.URL.Query().Get("stepup") == "1" {
		req.StepUp = true
	}
	if req.Redirect == "" {
		req.Redirect = r.URL.Query().Get("rd")
	}
	origin, err := s.ceremonyOrigin(r)
	if err != nil {
		return &httpError{Code: http.StatusForbidden, Key: "err_origin", Reason: ReasonOrigin, Err: err}
	}
	rp, err := s.rps.get(origin)
	if err != nil {
		return err
	}
	var opts []webauthn.LoginOption
	if req.StepUp {
		opts = append(opts, webauthn.WithUserVerification(protocol.VerificationRequired))
	}
	assertion, sd, err := rp.BeginDiscoverableLogin(opts...)
	if err != nil {
		return fmt.Errorf("beginning login: %w", err)
	}
	st := &ceremonyState{Kind: kindLogin, Session: *sd, Origin: origin, Redirect: s.safeRedirect(r, req.Redirect), StepUp: req.StepUp}
	if err := s.beginCeremony(w, r, st); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, assertion)
	return nil
}

// loginFinish verifies the PublicKeyCredential JSON of an assertion,
// issues the session cookie and answers {"redirect": URL}.
func (s *Service) loginFinish(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	fail := func(he *httpError, user, credID string) error {
		s.metrics.ceremonies.WithLabelValues(kindLogin, "fail").Inc()
		s.emit(ctx, Event{Kind: EventLoginFailure, User: user, CredentialID: credID, Reason: he.Reason})
		return he
	}
	st, err := s.finishCeremony(w, r, kindLogin)
	if err != nil {
		return fail(ceremonyError(err), "", "")
	}
	body, herr := readBody(r)
	if herr != nil {
		return fail(herr, "", "")
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return fail(&httpError{Code: http.StatusBadRequest, Key: "err_bad_request", Reason: ReasonBadRequest, Err: fmt.Errorf("parsing assertion: %w", err)}, "", "")
	}
	credID := base64.RawURLEncoding.EncodeToString(parsed.RawID)
	cred, err := s.st.GetCredential(ctx, parsed.RawID)
	if errors.Is(err, store.ErrNotFound) {
		return fail(&httpError{Code: http.StatusUnauthorized, Key: "err_unknown_credential", Reason: ReasonUnknownCredential, Err: fmt.Errorf("credential %s: %w", credID, err)}, "", credID)
	} else if err != nil {
		return fmt.Errorf("reading credential %s: %w", credID, err)
	}
	if !s.limits.allowUser(cred.UserID, s.now()) {
		s.metrics.limited.WithLabelValues("user").Inc()
		return fail(rateLimited("user "+cred.UserID), cred.UserID, credID)
	}
	user, err := s.st.GetUser(ctx, cred.UserID)
	if err != nil {
		return fmt.Errorf("reading user %s of credential %s: %w", cred.UserID, credID, err)
	}
	if user.Disabled {
		return fail(&httpError{Code: http.StatusForbidden, Key: "err_disabled", Reason: ReasonDisabled, Err: fmt.Errorf("user %s is disabled", user.ID)}, user.ID, credID)
	}
	if cred.CloneWarning {
		return fail(&httpError{Code: http.StatusForbidden, Key: "err_clone", Reason: ReasonCloneWarning, Err: fmt.Errorf("credential %s carries a clone warning", credID)}, user.ID, credID)
	}
	rp, err := s.rps.get(st.Origin)
	if err != nil {
		return err
	}
	wu := newWAUser(s.cfg.WebAuthn.RPID, user, []*store.Credential{cred})
	byHandle := func(rawID, handle []byte) (webauthn.User, error) { return wu, nil }
	_, got, err := rp.ValidatePasskeyLogin(byHandle, st.Session, parsed)
	if err != nil {
		reason := classify(err)
		return fail(&httpError{Code: http.StatusUnauthorized, Key: errKey(reason, "err_login_failed"), Reason: reason, Err: fmt.Errorf("verifying assertion of %s: %w", credID, err)}, user.ID, credID)
	}
	flags := parsed.Response.AuthenticatorData.Flags
	if got.Authenticator.CloneWarning {
		// The counter did not advance: a copy of the key may be in use.
		// Refuse, and keep the credential refused until an administrator
		// removes it.
		cred.CloneWarning = true
		if err := s.st.UpdateCredentialUse(ctx, cred); err != nil {
			return fmt.Errorf("flagging credential %s: %w", credID, err)
		}
		s.emit(ctx, Event{Kind: EventCounterRegression, User: user.ID, CredentialID: credID, Reason: ReasonCounterRegression})
		return fail(&httpError{Code: http.StatusForbidden, Key: "err_clone", Reason: ReasonCounterRegression,
			Err: fmt.Errorf("credential %s: sign counter %d not above stored %d", credID, parsed.Response.AuthenticatorData.Counter, cred.SignCount)}, user.ID, credID)
	}
	cred.SignCount = got.Authenticator.SignCount
	cred.UserPresent = flags.HasUserPresent()
	cred.UserVerified = cred.UserVerified || flags.HasUserVerified()
	cred.BackupState = flags.HasBackupState()
	cred.LastUsedAt = s.now()
	if err := s.st.UpdateCredentialUse(ctx, cred); err != nil {
		return fmt.Errorf("recording use of credential %s: %w", credID, err)
	}

	amr := []string{"hwk"}
	if flags.HasUserPresent() {
		amr = append(amr, "user")
	}
	if flags.HasUserVerified() {
		amr = append(amr, "uv")
	}
	claims := &session.Claims{User: user.ID, AuthTime: s.now(), IP: clientIP(r)}
	if info := reqctx.From(ctx); info != nil && info.Device != "" && info.CertError == "" {
		amr = append(amr, "mtls")
		claims.Device, claims.CertFP = info.Device, info.CertFP
	}
	claims.AMR = amr
	// A login over a live session of the same user and device (a step-up)
	// strengthens that session: same id and absolute expiry, new auth time
	// and amr. Any other live session in this browser is ended.
	if prev, err := s.verifyCookie(r); err == nil {
		if prev.User == user.ID && prev.Device == claims.Device && prev.CertFP == claims.CertFP {
			prev.AuthTime, prev.AMR = claims.AuthTime, claims.AMR
			claims = prev
		} else if err := s.sm.Revoke(ctx, &store.Revocation{Kind: store.RevokeSession, Subject: prev.ID, At: s.now(), By: user.ID, Reason: "replaced by a new login"}); err != nil {
			s.log.WarnContext(ctx, "revoking replaced session", "session", prev.ID, "err", err)
		}
	}
	token, err := s.sm.Issue(ctx, claims)
	if err != nil {
		return fmt.Errorf("issuing session for %s: %w", user.ID, err)
	}
	s.sm.SetCookie(w, token, claims)
	s.users.forget(user.ID)
	s.metrics.ceremonies.WithLabelValues(kindLogin, "ok").Inc()
	kind := EventLoginSuccess
	if st.StepUp {
		kind = EventStepUp
	}
	s.emit(ctx, Event{Kind: kind, User: user.ID, CredentialID: credID})
	writeJSON(w, http.StatusOK, map[string]string{"redirect": st.Redirect})
	return nil
}

// ceremonyError maps finishCeremony's errors to a refusal.
func ceremonyError(err error) *httpError {
	switch {
	case errors.Is(err, errReplay):
		return &httpError{Code: http.StatusBadRequest, Key: "err_ceremony", Reason: ReasonReplay, Err: err}
	case errors.Is(err, errOrigin):
		return &httpError{Code: http.StatusForbidden, Key: "err_origin", Reason: ReasonOrigin, Err: err}
	case errors.Is(err, errUnavailable):
		return &httpError{Code: http.StatusServiceUnavailable, Key: "err_unavailable", Reason: ReasonUnavailable, Err: err, RetryAfter: 5}
	}
	return &httpError{Code: http.StatusBadRequest, Key: "err_ceremony", Reason: ReasonCeremony, Err: err}
}
