package admin

import (
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sekisho/sekisho/store"
)

type userRow struct {
	User        *store.User
	Passkeys    int
	CloneWarn   bool
	LastUsed    time.Time
	Devices     int
	ViewURL     string
	TimelineURL string
}

type usersData struct {
	Rows         []userRow
	Staff        int
	StaffPasskey int
	Form         url.Values
	// Query narrows the list (id, name, department or role contains it);
	// the passkey share is always over all staff.
	Query string
	Shown int
	Pager pager
}

// users lists staff accounts with their passkeys and devices, and the
// share of enabled staff with at least one passkey.
func (c *Console) users(w http.ResponseWriter, r *http.Request) {
	p := c.newPage(r, "users", "nav.users")
	d, err := c.usersData(r)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	d.Form = url.Values{}
	p.Data = d
	c.render(w, r, "users", p)
}

// matchesQuery reports whether any field contains q, ignoring case.
func matchesQuery(q string, fields ...string) bool {
	if q == "" {
		return true
	}
	q = strings.ToLower(q)
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), q) {
			return true
		}
	}
	return false
}

func (c *Console) usersData(r *http.Request) (*usersData, error) {
	ctx := r.Context()
	users, err := c.d.Store.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	devs, err := c.d.Store.ListDevices(ctx)
	if err != nil {
		return nil, err
	}
	sums, err := c.d.Store.CredentialSummaries(ctx)
	if err != nil {
		return nil, err
	}
	owned := map[string]int{}
	for _, dv := range devs {
		if dv.Owner != "" {
			owned[dv.Owner]++
		}
	}
	d := &usersData{Query: strings.TrimSpace(r.URL.Query().Get("q"))}
	if len(d.Query) > maxFieldLen {
		d.Query = ""
	}
	var match []*store.User
	for _, u := range users {
		if !u.Disabled {
			d.Staff++
			if sums[u.ID].Count > 0 {
				d.StaffPasskey++
			}
		}
		if matchesQuery(d.Query, append([]string{u.ID, u.DisplayName, u.Department}, u.Roles...)...) {
			match = append(match, u)
		}
	}
	d.Shown = len(match)
	lo, hi, pg := paginate(r, "/users", d.Query, len(match))
	d.Pager = pg
	for _, u := range match[lo:hi] {
		sum := sums[u.ID]
		d.Rows = append(d.Rows, userRow{User: u, Passkeys: sum.Count, CloneWarn: sum.CloneWarning, LastUsed: sum.LastUsedAt,
			Devices:     owned[u.ID],
			ViewURL:     Prefix + "/users/view?" + url.Values{"id": {u.ID}}.Encode(),
			TimelineURL: Prefix + "/timeline?" + url.Values{"user": {u.ID}}.Encode()})
	}
	return d, nil
}

// validID accepts the ids sekisho uses for users: printable, no spaces or
// control characters, at most 128 bytes.
func validID(s string) bool {
	if s == "" || len(s) > 128 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// cleanText trims a free-text field and refuses control characters.
func cleanText(s string, maxLen int) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) > maxLen || !utf8.ValidString(s) {
		return "", false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", false
		}
	}
	return s, true
}

// splitRoles reads roles separated by commas or spaces.
func splitRoles(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '、' || unicode.IsSpace(r) }) {
		f = strings.TrimPrefix(f, "role:")
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// addUser creates a staff account.
func (c *Console) addUser(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	id := strings.TrimSpace(f.Get("id"))
	name, ok1 := cleanText(f.Get("display_name"), 200)
	dept, ok2 := cleanText(f.Get("department"), 200)
	rolesText, ok3 := cleanText(f.Get("roles"), 1000)
	bad := ""
	switch {
	case !validID(id):
		bad = "err.badid"
	case !ok1 || !ok2 || !ok3:
		bad = "err.badtext"
	}
	if bad == "" {
		now := c.now().UTC()
		u := &store.User{ID: id, DisplayName: name, Department: dept, Roles: splitRoles(rolesText), CreatedAt: now, UpdatedAt: now}
		err := c.d.Store.CreateUser(r.Context(), u)
		switch {
		case errors.Is(err, store.ErrExists):
			bad = "err.exists"
		case err != nil:
			_ = c.record(r, "user_add", id, "", err)
			c.internal(w, r, err)
			return
		default:
			detail := "display_name=" + name + "; department=" + dept + "; roles=" + strings.Join(u.Roles, ",")
			if err := c.record(r, "user_add", id, detail, nil); err != nil {
				c.internal(w, r, err)
				return
			}
			redirect(w, r, "/users/view", url.Values{"id": {id}}, "user_added")
			return
		}
	}
	p := c.newPage(r, "users", "nav.users")
	d, err := c.usersData(r)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	d.Form = f
	p.Data = d
	p.Error = p.T(bad)
	w.WriteHeader(http.StatusBadRequest)
	c.render(w, r, "users", p)
}

type userViewData struct {
	User        *store.User
	Passkeys    []*store.Credential
	Devices     []*store.Device
	Sessions    []*store.Session
	TimelineURL string
	RevokeURL   string
}

// userView shows one account: passkeys, devices, sessions and actions.
func (c *Console) userView(w http.ResponseWriter, r *http.Request) {
	c.renderUser(w, r, r.URL.Query().Get("id"), http.StatusOK, "")
}

func (c *Console) renderUser(w http.ResponseWriter, r *http.Request, id string, status int, errKey string) {
	ctx := r.Context()
	u, err := c.d.Store.GetUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, "err.nouser", nil)
		return
	}
	if err != nil {
		c.internal(w, r, err)
		return
	}
	d := &userViewData{User: u,
		TimelineURL: Prefix + "/timeline?" + url.Values{"user": {u.ID}}.Encode(),
		RevokeURL:   Prefix + "/revoke?" + url.Values{"kind": {"user"}, "subject": {u.ID}}.Encode()}
	if d.Passkeys, err = c.d.Store.ListCredentials(ctx, u.ID); err != nil {
		c.internal(w, r, err)
		return
	}
	if d.Sessions, err = c.d.Store.ListSessions(ctx, u.ID); err != nil {
		c.internal(w, r, err)
		return
	}
	devs, err := c.d.Store.ListDevices(ctx)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	for _, dv := range devs {
		if dv.Owner == u.ID {
			d.Devices = append(d.Devices, dv)
		}
	}
	p := c.newPage(r, "users", "")
	p.Title = p.T("user.title", u.ID)
	p.Data = d
	if errKey != "" {
		p.Error = p.T(errKey)
	}
	if status != http.StatusOK {
		w.WriteHeader(status)
	}
	c.render(w, r, "user", p)
}

// formUser loads the user a form names.
func (c *Console) formUser(w http.ResponseWriter, r *http.Request) (*store.User, bool) {
	u, err := c.d.Store.GetUser(r.Context(), r.PostForm.Get("id"))
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, "err.nouser", nil)
		return nil, false
	}
	if err != nil {
		c.internal(w, r, err)
		return nil, false
	}
	return u, true
}

// disableUser disables an account and ends its sessions at once. A
// reason is required; it goes into the audit record and the revocation.
func (c *Console) disableUser(w http.ResponseWriter, r *http.Request) {
	u, ok := c.formUser(w, r)
	if !ok {
		return
	}
	reason, ok := cleanText(r.PostForm.Get("reason"), 500)
	if !ok || reason == "" {
		c.renderUser(w, r, u.ID, http.StatusBadRequest, "err.reason")
		return
	}
	_, err := c.revokeUser(r, u, reason)
	if rerr := c.record(r, "user_disable", u.ID, reason, err); err != nil || rerr != nil {
		c.internal(w, r, errors.Join(err, rerr))
		return
	}
	redirect(w, r, "/users/view", url.Values{"id": {u.ID}}, "user_disabled")
}

// revokeUser disables u and revokes its sessions.
func (c *Console) revokeUser(r *http.Request, u *store.User, reason string) (*store.Revocation, error) {
	ctx := r.Context()
	now := c.now().UTC()
	if !u.Disabled {
		u.Disabled, u.UpdatedAt = true, now
		if err := c.d.Store.UpdateUser(ctx, u); err != nil {
			return nil, err
		}
	}
	rev := &store.Revocation{Kind: store.RevokeUser, Subject: u.ID, At: now, By: actor(r), Reason: reason}
	return rev, c.d.Revoke(ctx, rev)
}

// enableUser re-enables an account. Sessions ended by a revocation stay
// ended; the user signs in again.
func (c *Console) enableUser(w http.ResponseWriter, r *http.Request) {
	u, ok := c.formUser(w, r)
	if !ok {
		return
	}
	reason, ok := cleanText(r.PostForm.Get("reason"), 500)
	if !ok {
		c.renderUser(w, r, u.ID, http.StatusBadRequest, "err.badtext")
		return
	}
	var err error
	if u.Disabled {
		u.Disabled, u.UpdatedAt = false, c.now().UTC()
		err = c.d.Store.UpdateUser(r.Context(), u)
	}
	if rerr := c.record(r, "user_enable", u.ID, reason, err); err != nil || rerr != nil {
		c.internal(w, r, errors.Join(err, rerr))
		return
	}
	redirect(w, r, "/users/view", url.Values{"id": {u.ID}}, "user_enabled")
}

type invitedData struct {
	User    *store.User
	URL     string
	Expires time.Time
	BackURL string
}

// inviteUser makes a one-time enrollment URL and shows it once: it is not
// stored (only its hash is) and not put in any link or redirect.
func (c *Console) inviteUser(w http.ResponseWriter, r *http.Request) {
	u, ok := c.formUser(w, r)
	if !ok {
		return
	}
	if u.Disabled {
		c.renderUser(w, r, u.ID, http.StatusConflict, "err.disabled")
		return
	}
	ttl := 24 * time.Hour
	switch r.PostForm.Get("ttl") {
	case "", "24h":
	case "1h":
		ttl = time.Hour
	case "72h":
		ttl = 72 * time.Hour
	case "168h":
		ttl = 168 * time.Hour
	default:
		c.renderUser(w, r, u.ID, http.StatusBadRequest, "err.badttl")
		return
	}
	token, err := c.d.Invite(r.Context(), u.ID, ttl)
	var link string
	if err == nil {
		host := r.Host
		if info := infoOf(r); info != nil && info.Host != "" {
			host = info.Host
		}
		link, err = c.d.EnrollURL(host, token)
	}
	if rerr := c.record(r, "user_invite", u.ID, "ttl="+ttl.String(), err); err != nil || rerr != nil {
		c.internal(w, r, errors.Join(err, rerr))
		return
	}
	p := c.newPage(r, "users", "invite.title")
	p.Data = &invitedData{User: u, URL: link, Expires: c.now().Add(ttl),
		BackURL: Prefix + "/users/view?" + url.Values{"id": {u.ID}}.Encode()}
	c.render(w, r, "invited", p)
}

// deletePasskey removes one of a user's passkeys (for example one with a
// clone warning, which is refused until an administrator removes it).
func (c *Console) deletePasskey(w http.ResponseWriter, r *http.Request) {
	u, ok := c.formUser(w, r)
	if !ok {
		return
	}
	credID, err := hex.DecodeString(r.PostForm.Get("credential"))
	if err != nil || len(credID) == 0 {
		c.renderUser(w, r, u.ID, http.StatusBadRequest, "err.badvalue0")
		return
	}
	reason, _ := cleanText(r.PostForm.Get("reason"), 500)
	err = c.d.Store.DeleteCredential(r.Context(), u.ID, credID)
	if errors.Is(err, store.ErrNotFound) {
		c.renderUser(w, r, u.ID, http.StatusNotFound, "err.nopasskey")
		return
	}
	if rerr := c.record(r, "passkey_delete", u.ID, "credential="+hex.EncodeToString(credID)+"; "+reason, err); err != nil || rerr != nil {
		c.internal(w, r, errors.Join(err, rerr))
		return
	}
	redirect(w, r, "/users/view", url.Values{"id": {u.ID}}, "passkey_deleted")
}
