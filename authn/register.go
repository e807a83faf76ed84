package authn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/sekisho/sekisho/store"
)

type enrollPageData struct {
	Token       string
	UserID      string
	DisplayName string
	Department  string
}

// enrollPage serves GET /.sekisho/enroll?token=T: whose passkey is about
// to be registered, and the button that starts it. The invitation is only
// looked at here; register/finish consumes it.
func (s *Service) enrollPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	inv, err := s.peekInvitation(r, token)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.st.GetUser(r.Context(), inv.UserID)
	if err != nil || u.Disabled {
		s.fail(w, r, &httpError{Code: http.StatusGone, Key: "err_invitation", Reason: ReasonInvitation, Err: fmt.Errorf("invitation for missing or disabled user %s: %v", inv.UserID, err)})
		return
	}
	s.render(w, r, http.StatusOK, "enroll", "title_enroll", enrollPageData{Token: token, UserID: u.ID, DisplayName: u.DisplayName, Department: u.Department})
}

func (s *Service) peekInvitation(r *http.Request, token string) (*store.Invitation, error) {
	if token == "" || len(token) > 128 {
		return nil, &httpError{Code: http.StatusGone, Key: "err_invitation", Reason: ReasonInvitation, Err: errors.New("missing or oversized invitation token")}
	}
	inv, err := s.st.PeekInvitation(r.Context(), tokenHash(token), s.now())
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvitationUsed) {
		return nil, &httpError{Code: http.StatusGone, Key: "err_invitation", Reason: ReasonInvitation, Err: fmt.Errorf("invitation: %w", err)}
	} else if err != nil {
		return nil, fmt.Errorf("reading invitation: %w", err)
	}
	return inv, nil
}

type registerBeginRequest struct {
	Token string `json:"token"`
}

// registerBegin answers POST /.sekisho/webauthn/register/begin with
// {"publicKey": PublicKeyCredentialCreationOptions}. The body names an
// invitation ({"token": T}); without one the signed-in user adds a passkey,
// which needs a recent authentication.
func (s *Service) registerBegin(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	body, herr := readBody(r)
	if herr != nil {
		return herr
	}
	var req registerBeginRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return &httpError{Code: http.StatusBadRequest, Key: "err_bad_request", Err: fmt.Errorf("decoding register begin: %w", err)}
		}
	}
	origin, err := s.ceremonyOrigin(r)
	if err != nil {
		return &httpError{Code: http.StatusForbidden, Key: "err_origin", Reason: ReasonOrigin, Err: err}
	}
	st := &ceremonyState{Kind: kindRegister, Origin: origin}
	var user *store.User
	if req.Token != "" {
		inv, err := s.peekInvitation(r, req.Token)
		if err != nil {
			return err
		}
		st.TokenHash = tokenHash(req.Token)
		if user, err = s.st.GetUser(ctx, inv.UserID); err != nil {
			return fmt.Errorf("reading invited user %s: %w", inv.UserID, err)
		}
	} else {
		id, err := s.Identify(r)
		if err != nil {
			return &httpError{Code: http.StatusUnauthorized, Key: "err_login_required", Err: err, Redirect: PathLogin}
		}
		if !s.recentlyVerified(id) {
			return &httpError{Code: http.StatusForbidden, Key: "err_stepup_required", Err: errors.New("adding a passkey needs a recent verified login"),
				Redirect: PathLogin + "?stepup=1&rd=" + url.QueryEscape(PathAccount)}
		}
		st.SessionID = id.SessionID
		if user, err = s.st.GetUser(ctx, id.User); err != nil {
			return fmt.Errorf("reading user %s: %w", id.User, err)
		}
	}
	if user.Disabled {
		return &httpError{Code: http.StatusForbidden, Key: "err_disabled", Reason: ReasonDisabled, Err: fmt.Errorf("user %s is disabled", user.ID)}
	}
	if !s.limits.allowUser(user.ID, s.now()) {
		s.metrics.limited.WithLabelValues("user").Inc()
		return rateLimited("user " + user.ID)
	}
	creds, err := s.st.ListCredentials(ctx, user.ID)
	if err != nil {
		return fmt.Errorf("listing credentials of %s: %w", user.ID, err)
	}
	wu := newWAUser(s.cfg.WebAuthn.RPID, user, creds)
	exclude := make([]protocol.CredentialDescriptor, 0, len(wu.creds))
	for _, c := range wu.creds {
		exclude = append(exclude, c.Descriptor())
	}
	rp, err := s.rps.get(origin)
	if err != nil {
		return err
	}
	creation, sd, err := rp.BeginRegistration(wu,
		webauthn.WithExclusions(exclude),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()),
	)
	if err != nil {
		return fmt.Errorf("beginning registration for %s: %w", user.ID, err)
	}
	st.Session = *sd
	st.UserID = user.ID
	if err := s.beginCeremony(w, r, st); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, creation)
	return nil
}

// registerFinish verifies the PublicKeyCredential JSON of a new credential,
// applies the attestation policy, consumes the invitation (atomically: a
// second finish with the same invitation fails) and stores the passkey.
func (s *Service) registerFinish(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	fail := func(he *httpError) error {
		s.metrics.ceremonies.WithLabelValues(kindRegister, "fail").Inc()
		return he
	}
	st, err := s.finishCeremony(w, r, kindRegister)
	if err != nil {
		return fail(ceremonyError(err))
	}
	body, herr := readBody(r)
	if herr != nil {
		return fail(herr)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return fail(&httpError{Code: http.StatusBadRequest, Key: "err_bad_request", Reason: ReasonBadRequest, Err: fmt.Errorf("parsing attestation: %w", err)})
	}
	user, err := s.st.GetUser(ctx, st.UserID)
	if err != nil {
		return fmt.Errorf("reading user %s: %w", st.UserID, err)
	}
	if user.Disabled {
		return fail(&httpError{Code: http.StatusForbidden, Key: "err_disabled", Reason: ReasonDisabled, Err: fmt.Errorf("user %s is disabled", user.ID)})
	}
	if st.SessionID != "" {
		// Adding to an account: the session must still be this user's.
		id, err := s.Identify(r)
		if err != nil || id.SessionID != st.SessionID || id.User != user.ID {
			return fail(&httpError{Code: http.StatusUnauthorized, Key: "err_login_required", Err: fmt.Errorf("session changed during registration: %v", err)})
		}
	}
	creds, err := s.st.ListCredentials(ctx, user.ID)
	if err != nil {
		return fmt.Errorf("listing credentials of %s: %w", user.ID, err)
	}
	rp, err := s.rps.get(st.Origin)
	if err != nil {
		return err
	}
	cred, err := rp.CreateCredential(newWAUser(s.cfg.WebAuthn.RPID, user, creds), st.Session, parsed)
	if err != nil {
		reason := classify(err)
		return fail(&httpError{Code: http.StatusBadRequest, Key: errKey(reason, "err_register_failed"), Reason: reason, Err: fmt.Errorf("verifying registration for %s: %w", user.ID, err)})
	}
	credID := base64.RawURLEncoding.EncodeToString(cred.ID)
	if len(s.aaguids) > 0 && !slices.ContainsFunc(s.aaguids, func(a []byte) bool { return bytes.Equal(a, cred.Authenticator.AAGUID) }) {
		return fail(&httpError{Code: http.StatusForbidden, Key: "err_aaguid", Reason: ReasonAAGUID,
			Err: fmt.Errorf("authenticator AAGUID %s of %s is not in webauthn.allowed_aaguids", formatAAGUID(cred.Authenticator.AAGUID), user.ID)})
	}
	if s.cfg.WebAuthn.RefuseBackupEligible && cred.Flags.BackupEligible {
		return fail(&httpError{Code: http.StatusForbidden, Key: "err_backup_eligible", Reason: ReasonBackupEligible,
			Err: fmt.Errorf("backup-eligible credential refused for %s", user.ID)})
	}
	if st.TokenHash != nil {
		inv, err := s.st.ConsumeInvitation(ctx, st.TokenHash, s.now())
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvitationUsed) {
			return fail(&httpError{Code: http.StatusGone, Key: "err_invitation", Reason: ReasonInvitation, Err: fmt.Errorf("consuming invitation of %s: %w", user.ID, err)})
		} else if err != nil {
			return fmt.Errorf("consuming invitation of %s: %w", user.ID, err)
		}
		if inv.UserID != user.ID {
			return fail(&httpError{Code: http.StatusGone, Key: "err_invitation", Reason: ReasonInvitation, Err: fmt.Errorf("invitation is for %s, ceremony for %s", inv.UserID, user.ID)})
		}
	}
	now := s.now()
	transports := make([]string, 0, len(cred.Transport))
	for _, t := range cred.Transport {
		transports = append(transports, string(t))
	}
	sc := &store.Credential{
		ID:              cred.ID,
		UserID:          user.ID,
		Name:            translate(s.pages.lang(r), "default_passkey") + " " + now.In(jst).Format("2006-01-02 15:04"),
		PublicKey:       cred.PublicKey,
		AttestationType: cred.AttestationType,
		AAGUID:          cred.Authenticator.AAGUID,
		SignCount:       cred.Authenticator.SignCount,
		Transports:      transports,
		UserPresent:     cred.Flags.UserPresent,
		UserVerified:    cred.Flags.UserVerified,
		BackupEligible:  cred.Flags.BackupEligible,
		BackupState:     cred.Flags.BackupState,
		CreatedAt:       now,
	}
	if err := s.st.AddCredential(ctx, sc); errors.Is(err, store.ErrExists) {
		return fail(&httpError{Code: http.StatusConflict, Key: "err_already_registered", Reason: ReasonExists, Err: fmt.Errorf("credential %s exists", credID)})
	} else if err != nil {
		return fmt.Errorf("storing credential of %s: %w", user.ID, err)
	}
	s.metrics.ceremonies.WithLabelValues(kindRegister, "ok").Inc()
	if st.TokenHash != nil {
		s.emit(ctx, Event{Kind: EventEnroll, User: user.ID, CredentialID: credID})
		writeJSON(w, http.StatusOK, map[string]string{"redirect": PathLogin + "?enrolled=1"})
		return nil
	}
	s.emit(ctx, Event{Kind: EventPasskeyAdded, User: user.ID, CredentialID: credID})
	writeJSON(w, http.StatusOK, map[string]string{"redirect": PathAccount + "?added=1"})
	return nil
}

// recentlyVerified reports whether id authenticated recently enough, and
// with user verification where the configuration requires it, to change
// the account's passkeys.
func (s *Service) recentlyVerified(id *Identity) bool {
	if s.now().Sub(id.AuthTime) > s.stepupAge {
		return false
	}
	return s.uv != "required" || slices.Contains(id.AMR, "uv")
}
