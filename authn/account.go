package authn

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sekisho/sekisho/store"
)

type accountPageData struct {
	ID       *Identity
	CSRF     string
	Passkeys []passkeyRow
	Devices  []deviceRow
	Added    bool
	Now      time.Time
}

type passkeyRow struct {
	ID             string // base64url
	Name           string
	Created        string
	LastUsed       string
	BackupEligible bool
	CloneWarning   bool
}

type deviceRow struct {
	ID       string
	Status   string
	LastSeen string
	Current  bool
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(jst).Format("2006-01-02 15:04")
}

// jst is the time zone staff read times in.
var jst = time.FixedZone("JST", 9*60*60)

// accountPage serves GET /.sekisho/account: the user's passkeys (rename,
// remove, add) and devices, and sign out.
func (s *Service) accountPage(w http.ResponseWriter, r *http.Request) {
	id, err := s.Identify(r)
	if err != nil {
		s.RequireLogin(w, r)
		return
	}
	if err := s.Refresh(w, r, id); err != nil {
		s.log.WarnContext(r.Context(), "refreshing session", "err", err)
	}
	ctx := r.Context()
	creds, err := s.st.ListCredentials(ctx, id.User)
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing passkeys of %s: %w", id.User, err))
		return
	}
	d := accountPageData{ID: id, CSRF: s.seal.csrf(id.SessionID), Added: r.URL.Query().Get("added") == "1"}
	for _, c := range creds {
		d.Passkeys = append(d.Passkeys, passkeyRow{
			ID: base64.RawURLEncoding.EncodeToString(c.ID), Name: c.Name,
			Created: formatTime(c.CreatedAt), LastUsed: formatTime(c.LastUsedAt),
			BackupEligible: c.BackupEligible, CloneWarning: c.CloneWarning,
		})
	}
	devices, err := s.st.ListDevices(ctx)
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing devices: %w", err))
		return
	}
	for _, dv := range devices {
		if dv.Owner != id.User {
			continue
		}
		d.Devices = append(d.Devices, deviceRow{ID: dv.ID, Status: dv.Status, LastSeen: formatTime(dv.LastSeen), Current: dv.ID == id.Device})
	}
	s.render(w, r, http.StatusOK, "account", "title_account", d)
}

// passkeyFromForm reads the credential id field of a passkey form.
func passkeyFromForm(r *http.Request) ([]byte, error) {
	id, err := base64.RawURLEncoding.DecodeString(r.PostForm.Get("id"))
	if err != nil || len(id) == 0 || len(id) > 1023 {
		return nil, &httpError{Code: http.StatusBadRequest, Key: "err_bad_request", Err: errors.New("bad passkey id in form")}
	}
	return id, nil
}

// renamePasskey serves POST /.sekisho/account/passkeys/rename (id, name, csrf).
func (s *Service) renamePasskey(w http.ResponseWriter, r *http.Request, id *Identity) error {
	credID, err := passkeyFromForm(r)
	if err != nil {
		return err
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if n := utf8.RuneCountInString(name); n == 0 || n > 64 || !utf8.ValidString(name) || strings.ContainsFunc(name, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return &httpError{Code: http.StatusBadRequest, Key: "err_name", Err: fmt.Errorf("passkey name of %d characters", n), Redirect: PathAccount}
	}
	err = s.st.RenameCredential(r.Context(), id.User, credID, name)
	if errors.Is(err, store.ErrNotFound) {
		return &httpError{Code: http.StatusNotFound, Key: "err_passkey_not_found", Err: err, Redirect: PathAccount}
	} else if err != nil {
		return fmt.Errorf("renaming passkey of %s: %w", id.User, err)
	}
	http.Redirect(w, r, PathAccount, http.StatusSeeOther)
	return nil
}

// removePasskey serves POST /.sekisho/account/passkeys/remove (id, csrf).
// The last passkey cannot be removed: the user would be locked out until a
// new invitation.
func (s *Service) removePasskey(w http.ResponseWriter, r *http.Request, id *Identity) error {
	credID, err := passkeyFromForm(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	creds, err := s.st.ListCredentials(ctx, id.User)
	if err != nil {
		return fmt.Errorf("listing passkeys of %s: %w", id.User, err)
	}
	owned := false
	usable := 0
	for _, c := range creds {
		if string(c.ID) == string(credID) {
			owned = true
		} else if !c.CloneWarning {
			usable++
		}
	}
	if !owned {
		return &httpError{Code: http.StatusNotFound, Key: "err_passkey_not_found", Err: errors.New("passkey not owned by user"), Redirect: PathAccount}
	}
	if usable == 0 {
		return &httpError{Code: http.StatusConflict, Key: "err_last_passkey", Err: fmt.Errorf("%s tried to remove the last usable passkey", id.User), Redirect: PathAccount}
	}
	if err := s.st.DeleteCredential(ctx, id.User, credID); err != nil {
		return fmt.Errorf("removing passkey of %s: %w", id.User, err)
	}
	s.emit(ctx, Event{Kind: EventPasskeyRemoved, User: id.User, CredentialID: base64.RawURLEncoding.EncodeToString(credID)})
	http.Redirect(w, r, PathAccount, http.StatusSeeOther)
	return nil
}

// logout serves POST /.sekisho/logout (csrf[, rd]): the session is revoked
// on every replica, the cookie cleared, and the browser sent to rd if safe,
// else to the login page.
func (s *Service) logout(w http.ResponseWriter, r *http.Request, id *Identity) error {
	ctx := r.Context()
	rev := &store.Revocation{Kind: store.RevokeSession, Subject: id.SessionID, At: s.now(), By: id.User, Reason: "logout"}
	if err := s.sm.Revoke(ctx, rev); err != nil {
		return fmt.Errorf("revoking session %s: %w", id.SessionID, err)
	}
	s.sm.ClearCookie(w)
	s.emit(ctx, Event{Kind: EventLogout, User: id.User, Reason: "logout"})
	target := PathLogin + "?logged_out=1"
	if rd := r.PostForm.Get("rd"); rd != "" {
		if u, ok := s.checkRedirect(requestScheme(r), r.Host, rd); ok {
			target = u
		}
	}
	if !acceptsHTML(r) {
		writeJSON(w, http.StatusOK, map[string]string{"redirect": target})
		return nil
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}
