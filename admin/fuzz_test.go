package admin

import (
	"net/url"
	"testing"
	"time"
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
