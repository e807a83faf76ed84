package admin

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/store"
)

// maxTimeline bounds the rows of one timeline page.
const maxTimeline = 5000

// defaultTimelineWindow is the window of a timeline opened without since.
const defaultTimelineWindow = 7 * 24 * time.Hour

type timelineData struct {
	Form      url.Values
	User      string
	Device    string
	Since     time.Time
	Until     time.Time
	Records   []*audit.Record
	Truncated bool
	// Summary of the window.
	IPs, Zones, Devices, Users, Routes []string
	Allow, Deny, StepUp, Error         int
	Authn, Admin, Alerts               int
	First, Last                        time.Time
	// Current state from the store.
	Account    *store.User
	DeviceRec  *store.Device
	Sessions   []*store.Session
	RevokeURL  string
	CSVURL     string
	Unreadable int
}

// timeline is every authentication and access of one user or device in a
// window, oldest first, on one printable page: what CSIRT reads in the
// first hour of an incident.
func (c *Console) timeline(w http.ResponseWriter, r *http.Request) {
	p := c.newPage(r, "timeline", "nav.timeline")
	q := r.URL.Query()
	d := &timelineData{Form: q, User: q.Get("user"), Device: q.Get("device")}
	p.Data = d
	if d.User == "" && d.Device == "" {
		c.render(w, r, "timeline", p)
		return
	}
	if len(d.User) > maxFieldLen || len(d.Device) > maxFieldLen {
		p.Error = p.T("err.toolong", p.T("f.user"))
		w.WriteHeader(http.StatusBadRequest)
		c.render(w, r, "timeline", p)
		return
	}
	var err1, err2 error
	d.Since, err1 = parseTime(q.Get("since"), c.loc)
	d.Until, err2 = parseTime(q.Get("until"), c.loc)
	if err1 != nil || err2 != nil {
		p.Error = p.T("err.badtime", p.T("f.since"))
		w.WriteHeader(http.StatusBadRequest)
		c.render(w, r, "timeline", p)
		return
	}
	if d.Until.IsZero() {
		d.Until = c.now().Add(time.Minute)
	}
	if d.Since.IsZero() {
		d.Since = d.Until.Add(-defaultTimelineWindow)
	}
	if !d.Since.Before(d.Until) {
		p.Error = p.T("err.timeorder", p.T("f.until"))
		w.WriteHeader(http.StatusBadRequest)
		c.render(w, r, "timeline", p)
		return
	}
	sets := map[string]map[string]bool{}
	addTo := func(name, v string) {
		if v == "" {
			return
		}
		if sets[name] == nil {
			sets[name] = map[string]bool{}
		}
		sets[name][v] = true
	}
	counted := map[string]bool{}
	for rec, err := range c.query(r.Context(), audit.Filter{Since: d.Since, Until: d.Until}) {
		var le *audit.LineError
		switch {
		case errors.As(err, &le):
			d.Unreadable++
			continue
		case err != nil:
			c.internal(w, r, err)
			return
		}
		if rec.Event == audit.EventCheckpoint {
			continue
		}
		if d.User != "" && rec.User != d.User && rec.Target != d.User {
			continue
		}
		if d.Device != "" && rec.Device != d.Device && rec.Target != d.Device {
			continue
		}
		if len(d.Records) >= maxTimeline {
			d.Truncated = true
			break
		}
		d.Records = append(d.Records, rec)
		if d.First.IsZero() {
			d.First = rec.Time
		}
		d.Last = rec.Time
		addTo("ip", rec.IP)
		addTo("zone", rec.Zone)
		addTo("device", rec.Device)
		addTo("user", rec.User)
		addTo("route", rec.Route)
		switch rec.Event {
		case audit.EventAuthn:
			d.Authn++
		case audit.EventAdmin:
			d.Admin++
		case audit.EventAlert:
			d.Alerts++
		case audit.EventAccess:
			// One decision per request (a sync class writes two records).
			if rec.RequestID != "" {
				if counted[rec.RequestID] {
					continue
				}
				counted[rec.RequestID] = true
			}
			switch rec.Decision {
			case audit.DecisionAllow:
				d.Allow++
			case audit.DecisionDeny:
				d.Deny++
			case audit.DecisionStepUp:
				d.StepUp++
			default:
				d.Error++
			}
		}
	}
	keys := func(name string) []string {
		var out []string
		for k := range sets[name] {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	d.IPs, d.Zones, d.Devices, d.Users, d.Routes = keys("ip"), keys("zone"), keys("device"), keys("user"), keys("route")

	ctx := r.Context()
	rq := url.Values{}
	if d.User != "" {
		rq.Set("kind", "user")
		rq.Set("subject", d.User)
		if u, err := c.d.Store.GetUser(ctx, d.User); err == nil {
			d.Account = u
			if d.Sessions, err = c.d.Store.ListSessions(ctx, d.User); err != nil {
				c.internal(w, r, err)
				return
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			c.internal(w, r, err)
			return
		}
	} else {
		rq.Set("kind", "device")
		rq.Set("subject", d.Device)
		if dv, err := c.d.Store.GetDevice(ctx, d.Device); err == nil {
			d.DeviceRec = dv
		} else if !errors.Is(err, store.ErrNotFound) {
			c.internal(w, r, err)
			return
		}
	}
	d.RevokeURL = Prefix + "/revoke?" + rq.Encode()
	cq := url.Values{"since": {c.inputTime(d.Since)}, "until": {c.inputTime(d.Until.Add(time.Minute - 1))}}
	if d.User != "" {
		cq.Set("user", d.User)
	} else {
		cq.Set("device", d.Device)
	}
	d.CSVURL = Prefix + "/audit.csv?" + cq.Encode()
	c.render(w, r, "timeline", p)
}
