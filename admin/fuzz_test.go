package admin

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
)

// FuzzParseFilter: any query string yields a filter or a named error,
// never a panic, and an accepted window is never empty.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"", "user=alice&since=2026-11-20", "since=2026-11-23T10:00&until=2026-11-23T11:00",
		"since=2026-11-23T10:00:00%2B09:00", "decision=deny&enforced=false&event=access",
		"since=2026-11-24&until=2026-11-23", "enforced=maybe", "since=%FF%FE", "user=" + string(make([]byte, 300)),
		"since=9999-99-99", "since=2026-02-30", "until=0000-01-01T00:00",
	} {
		f.Add(s)
	}
	loc := time.FixedZone("JST", 9*3600)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, err := parseFilter(q, loc)
		if err != nil {
			if _, ok := err.(*errBadFilter); !ok {
				t.Fatalf("parseFilter(%q) error %T %v; want *errBadFilter", raw, err, err)
			}
			return
		}
		if !flt.Since.IsZero() && !flt.Until.IsZero() && !flt.Since.Before(flt.Until) {
			t.Fatalf("parseFilter(%q) accepted an empty window %v..%v", raw, flt.Since, flt.Until)
		}
		if len(flt.User) > maxFieldLen || len(flt.Device) > maxFieldLen {
			t.Fatalf("parseFilter(%q) accepted an over-long value", raw)
		}
	})
}

// FuzzReadRevokeForm: a kill-switch form is either refused with a message
// key or names a valid kind with a subject (except for "all") and a reason.
func FuzzReadRevokeForm(f *testing.F) {
	for _, s := range []string{
		"kind=user&subject=alice&reason=x", "kind=all&reason=x", "kind=all&subject=x&reason=y",
		"kind=device&subject=PC%20001&reason=x", "kind=session&subject=&reason=x", "kind=user&subject=a&reason=%00",
		"kind=planet", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		form, bad := readRevokeForm(q)
		if bad != "" {
			if !hasMessage(bad) {
				t.Fatalf("readRevokeForm(%q) = unknown message key %q", raw, bad)
			}
			return
		}
		if !validKind(form.Kind) || form.Reason == "" || (form.Kind == "all") != (form.Subject == "") {
			t.Fatalf("readRevokeForm(%q) accepted %+v", raw, form)
		}
		if form.Kind != "all" && !validID(form.Subject) {
			t.Fatalf("readRevokeForm(%q) accepted subject %q", raw, form.Subject)
		}
	})
}

// FuzzFormTokens: no forged form or confirmation token is accepted, and
// the genuine ones are.
func FuzzFormTokens(f *testing.F) {
	c := &Console{d: Deps{CSRFKey: []byte("0123456789abcdef0123456789abcdef")}}
	now := time.Unix(1_800_000_000, 0)
	good := c.confirmToken("s1", "user", "alice", "why", now.Add(time.Minute))
	f.Add("s1", c.csrfToken("s1"), good)
	f.Add("s1", "", "")
	f.Add("s2", c.csrfToken("s1"), good[:len(good)-1])
	f.Add("", "x", "1.")
	f.Add("s1", "%%", "99999999999999999999.AAAA")
	f.Fuzz(func(t *testing.T, session, csrf, confirm string) {
		if c.validCSRF(session, csrf) && csrf != c.csrfToken(session) {
			t.Fatalf("accepted a CSRF token %q that is not the session's", csrf)
		}
		if c.validConfirm(session, "user", "alice", "why", confirm, now) && (session != "s1" || confirm != good) {
			t.Fatalf("accepted confirmation %q for session %q", confirm, session)
		}
	})
}

// FuzzExplainQuery: any explain form yields a request or a message key,
// never a panic, and a request names a resolvable route.
func FuzzExplainQuery(f *testing.F) {
	e := newEnv(f)
	for _, s := range []string{
		"user=alice&route=zaimu&method=GET&path=/&zone=chonai&amr=hwk&amr=uv",
		"route=admin", "route=zaimu&path=export/x&auth_age=20m", "route=zaimu&auth_age=-5m&user=x",
		"route=zaimu&time=2026-11-23T10:00&user=x&auth_age=15", "route=nosuch", "route=zaimu&zone=mars&device=PC%00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		r := httptest.NewRequest("GET", Prefix+"/policy", nil)
		req, _, bad := e.console.explainRequest(r, q)
		if bad != "" {
			if !hasMessage(bad) {
				t.Fatalf("unknown message key %q", bad)
			}
			return
		}
		if req.Route == "" || req.Class == "" || req.Action == "" || req.Zone == "" || req.Path == "" || req.Path[0] != '/' {
			t.Fatalf("explainRequest(%q) = %+v", raw, req)
		}
		if req.Authenticated && req.AuthTime.After(req.Time) {
			t.Fatalf("authenticated after the request time: %+v", req)
		}
	})
}

// FuzzAlertOf: any detail of an alert record yields an alert to show,
// never a panic; the record's own rule and subject stand in when the
// detail does not name them.
func FuzzAlertOf(f *testing.F) {
	for _, s := range []string{
		"", "{}", "null", `{"id":"x","rule":"denial_burst","severity":"high","subject":"PC-1","subject_kind":"device","summary":"拒否","summary_en":"denials","count":3,"evidence":["r1"],"closed":true}`,
		`{"count":-5}`, `{"first":"not a time"}`, `{"rule":7}`, "[1,2", `{"summary":"<script>"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, detail string) {
		rec := &audit.Record{Time: time.Unix(1, 0), Event: audit.EventAlert, Action: "off_hours", Target: "alice",
			Reasons: []string{"medium"}, Detail: detail}
		v := alertOf(rec)
		if v == nil || v.Rule == "" || v.Subject == "" || v.Count < 1 || v.Last.IsZero() {
			t.Fatalf("alertOf(%q) = %+v; want rule, subject, count ≥ 1 and a time", detail, v)
		}
		_ = v.Text("en") + v.Text("ja") + v.SevLabel("ja")
	})
}
