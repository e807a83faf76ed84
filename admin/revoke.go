package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sekisho/sekisho/store"
)

// The kill switch ends sessions at once: of one user (who is also
// disabled), one device (which is also isolated in the registry, so its
// certificate is refused before any CRL), one session, or everyone. It
// takes two posts: the first checks the request and answers a page that
// repeats exactly what will happen, with a token bound to it; only the
// second, carrying that token, acts. A reason is mandatory and goes into
// the revocation and the audit record.

type revokeForm struct {
	Kind, Subject, Reason string
}

type confirmData struct {
	revokeForm
	Token         string
	Expires       time.Time
	User          *store.User
	Device        *store.Device
	DeviceUnknown bool
	Sessions      int
	Self          bool // the admin's own session ends too
	CancelURL     string
}

type revokedData struct {
	revokeForm
	Seq int64
	At  time.Time
}

var revokeKinds = []string{store.RevokeUser, store.RevokeDevice, store.RevokeSession, store.RevokeAll}

func (c *Console) revokeForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := c.newPage(r, "revoke", "nav.revoke")
	f := revokeForm{Kind: q.Get("kind"), Subject: q.Get("subject")}
	if !validKind(f.Kind) {
		f.Kind = store.RevokeUser
	}
	if len(f.Subject) > maxFieldLen {
		f.Subject = ""
	}
	p.Data = &f
	c.render(w, r, "revoke", p)
}

func validKind(k string) bool {
	for _, v := range revokeKinds {
		if k == v {
			return true
		}
	}
	return false
}

// readRevokeForm checks the form; the returned key names what is wrong.
func readRevokeForm(v url.Values) (revokeForm, string) {
	f := revokeForm{Kind: v.Get("kind"), Subject: strings.TrimSpace(v.Get("subject"))}
	reason, ok := cleanText(v.Get("reason"), 500)
	f.Reason = reason
	switch {
	case !validKind(f.Kind):
		return f, "err.kind"
	case f.Kind == store.RevokeAll:
		f.Subject = ""
	case !validID(f.Subject):
		return f, "err.subject"
	}
	if !ok || f.Reason == "" {
		return f, "err.reason"
	}
	return f, ""
}

// revokePost is both steps of the kill switch.
func (c *Console) revokePost(w http.ResponseWriter, r *http.Request) {
	f, bad := readRevokeForm(r.PostForm)
	if bad != "" {
		c.revokeFormError(w, r, f, bad)
		return
	}
	switch r.PostForm.Get("step") {
	case "confirm":
		c.revokeConfirm(w, r, f)
	case "execute":
		info := infoOf(r)
		if !c.validConfirm(info.SessionID, f.Kind, f.Subject, f.Reason, r.PostForm.Get("confirm"), c.now()) {
			c.revokeFormError(w, r, f, "err.confirm")
			return
		}
		c.revokeExecute(w, r, f)
	default:
		c.revokeFormError(w, r, f, "err.confirm")
	}
}

func (c *Console) revokeFormError(w http.ResponseWriter, r *http.Request, f revokeForm, key string) {
	p := c.newPage(r, "revoke", "nav.revoke")
	p.Error = p.T(key)
	p.Data = &f
	w.WriteHeader(http.StatusBadRequest)
	c.render(w, r, "revoke", p)
}

func (c *Console) revokeConfirm(w http.ResponseWriter, r *http.Request, f revokeForm) {
	ctx := r.Context()
	info := infoOf(r)
	d := &confirmData{revokeForm: f, Expires: c.now().Add(confirmTTL),
		CancelURL: Prefix + "/revoke?" + url.Values{"kind": {f.Kind}, "subject": {f.Subject}}.Encode()}
	d.Token = c.confirmToken(info.SessionID, f.Kind, f.Subject, f.Reason, d.Expires)
	var sessions []*store.Session
	var err error
	switch f.Kind {
	case store.RevokeUser:
		d.User, err = c.d.Store.GetUser(ctx, f.Subject)
		if errors.Is(err, store.ErrNotFound) {
			c.revokeFormError(w, r, f, "err.nouser")
			return
		}
		if err == nil {
			sessions, err = c.d.Store.ListSessions(ctx, f.Subject)
		}
		d.Self = f.Subject == info.User
	case store.RevokeDevice:
		d.Device, err = c.d.Store.GetDevice(ctx, f.Subject)
		if errors.Is(err, store.ErrNotFound) {
			d.Device, d.DeviceUnknown, err = nil, true, nil
		}
		if err == nil {
			sessions, err = c.d.Store.ListSessions(ctx, "")
		}
		d.Self = f.Subject == info.Device
	case store.RevokeSession:
		var s *store.Session
		s, err = c.d.Store.GetSession(ctx, f.Subject)
		if errors.Is(err, store.ErrNotFound) {
			err = nil // a session only in a cookie can still be revoked
		} else if err == nil {
			sessions = []*store.Session{s}
		}
		d.Self = f.Subject == info.SessionID
	case store.RevokeAll:
		sessions, err = c.d.Store.ListSessions(ctx, "")
		d.Self = true
	}
	if err != nil {
		c.internal(w, r, err)
		return
	}
	now := c.now()
	for _, s := range sessions {
		if s.ExpiresAt.Before(now) || (f.Kind == store.RevokeDevice && s.Device != f.Subject) {
			continue
		}
		d.Sessions++
	}
	p := c.newPage(r, "revoke", "confirm.title")
	p.Data = d
	c.render(w, r, "confirm", p)
}

func (c *Console) revokeExecute(w http.ResponseWriter, r *http.Request, f revokeForm) {
	ctx := r.Context()
	now := c.now().UTC()
	var rev *store.Revocation
	var err error
	switch f.Kind {
	case store.RevokeUser:
		var u *store.User
		if u, err = c.d.Store.GetUser(ctx, f.Subject); err == nil {
			rev, err = c.revokeUser(r, u, f.Reason)
		}
	case store.RevokeDevice:
		var dv *store.Device
		dv, err = c.d.Store.GetDevice(ctx, f.Subject)
		if errors.Is(err, store.ErrNotFound) {
			dv, err = &store.Device{ID: f.Subject, FirstSeen: now, LastSeen: now}, nil
		}
		if err == nil {
			dv.Status, dv.Reason = store.DeviceRevoked, f.Reason
			err = c.d.Store.UpsertDevice(ctx, dv)
		}
		if err == nil {
			rev = &store.Revocation{Kind: store.RevokeDevice, Subject: f.Subject, At: now, By: actor(r), Reason: f.Reason}
			err = c.d.Revoke(ctx, rev)
		}
	default:
		rev = &store.Revocation{Kind: f.Kind, Subject: f.Subject, At: now, By: actor(r), Reason: f.Reason}
		err = c.d.Revoke(ctx, rev)
	}
	if errors.Is(err, store.ErrNotFound) {
		// The user was removed between the two steps: nothing was done.
		c.revokeFormError(w, r, f, "err.nouser")
		return
	}
	if rerr := c.record(r, "revoke_"+f.Kind, f.Subject, f.Reason, err); err != nil || rerr != nil {
		c.internal(w, r, errors.Join(err, rerr))
		return
	}
	p := c.newPage(r, "revoke", "revoked.title")
	p.Data = &revokedData{revokeForm: f, Seq: rev.Seq, At: rev.At}
	c.render(w, r, "revoked", p)
}
