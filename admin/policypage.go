package admin

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/policy"
	"github.com/sekisho/sekisho/store"
)

type policyLine struct {
	N    int
	Text string
}

type policyData struct {
	Version string
	Lines   []policyLine
	// Stale: the file on disk is not the text in force (a reload failed
	// or has not happened yet).
	Stale   bool
	Form    url.Values
	Routes  []string
	Zones   []string
	AMRs    []string
	Methods []string
	Explain *policy.Explanation
	Request *policy.Request
	Notes   []string
}

// policyPage shows the policy in force and explains a request with the
// gateway's engine (the same as `sekisho policy explain`). Explaining
// changes nothing, so it is a GET form.
func (c *Console) policyPage(w http.ResponseWriter, r *http.Request) {
	p := c.newPage(r, "policy", "nav.policy")
	version, text := c.d.PolicyText()
	d := &policyData{Version: version, Routes: routeNames(c.d.Config), Zones: zoneNames(c.d.Config),
		AMRs: []string{"hwk", "user", "uv", "mtls"}, Methods: []string{"GET", "POST", "PUT", "DELETE"}}
	for i, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		d.Lines = append(d.Lines, policyLine{N: i + 1, Text: l})
	}
	d.Stale = c.d.PolicyFileDiffers != nil && c.d.PolicyFileDiffers()
	q := r.URL.Query()
	d.Form = q
	p.Data = d
	if q.Get("route") == "" {
		d.Form = url.Values{"amr": {"hwk", "uv"}, "method": {"GET"}, "path": {"/"}}
		c.render(w, r, "policy", p)
		return
	}
	req, notes, bad := c.explainRequest(r, q)
	if bad != "" {
		p.Error = p.T(bad)
		w.WriteHeader(http.StatusBadRequest)
		c.render(w, r, "policy", p)
		return
	}
	x := c.d.Explain(req)
	d.Explain, d.Request, d.Notes = &x, req, notes
	c.render(w, r, "policy", p)
}

// explainRequest builds the request to explain from the form, as the CLI
// does from its flags: roles, department and the device's registration
// come from the store.
func (c *Console) explainRequest(r *http.Request, q url.Values) (*policy.Request, []string, string) {
	for k, vs := range q {
		for _, v := range vs {
			if len(v) > maxFieldLen || len(k) > 64 {
				return nil, nil, "err.badexplain"
			}
		}
	}
	now := c.now()
	at, err := parseTime(q.Get("time"), c.loc)
	if err != nil {
		return nil, nil, "err.badexplain"
	}
	if at.IsZero() {
		at = now
	}
	method := strings.ToUpper(strings.TrimSpace(q.Get("method")))
	if method == "" {
		method = "GET"
	}
	path := q.Get("path")
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	route := q.Get("route")
	// "admin" is the console itself, as the gateway decides it.
	t, err := policy.Resolve(c.d.Config, route, method, path)
	if err != nil {
		return nil, nil, "err.badexplain"
	}
	if t.Action == "" {
		t.Action = "write"
		if method == "GET" || method == "HEAD" || method == "OPTIONS" {
			t.Action = "read"
		}
	}
	zone := q.Get("zone")
	if !slices.Contains(zoneNames(c.d.Config), zone) {
		zone = "external"
	}
	req := &policy.Request{User: strings.TrimSpace(q.Get("user")), Route: t.Route, Class: t.Class, Segment: t.Segment,
		Action: t.Action, Mode: t.Mode, Zone: zone, Time: at, Method: method, Path: path,
		Device: strings.TrimSpace(q.Get("device"))}
	req.Authenticated = req.User != ""
	var notes []string
	if req.Authenticated {
		for _, a := range q["amr"] {
			if slices.Contains([]string{"hwk", "user", "uv", "mtls"}, a) && !slices.Contains(req.AMR, a) {
				req.AMR = append(req.AMR, a)
			}
		}
		age := time.Duration(0)
		if s := q.Get("auth_age"); s != "" {
			if age, err = time.ParseDuration(s); err != nil || age < 0 {
				if m, err2 := strconv.Atoi(s); err2 == nil && m >= 0 {
					age = time.Duration(m) * time.Minute
				} else {
					return nil, nil, "err.badexplain"
				}
			}
		}
		req.AuthTime = at.Add(-age)
		u, err := c.d.Store.GetUser(r.Context(), req.User)
		switch {
		case errors.Is(err, store.ErrNotFound):
			notes = append(notes, "note.nouser")
		case err != nil:
			notes = append(notes, "note.storeerr")
		default:
			req.Roles, req.Department = u.Roles, u.Department
			if u.Disabled {
				notes = append(notes, "note.disabled")
			}
		}
	}
	if req.Device != "" {
		dv, err := c.d.Store.GetDevice(r.Context(), req.Device)
		switch {
		case errors.Is(err, store.ErrNotFound):
			notes = append(notes, "note.nodevice")
		case err != nil:
			notes = append(notes, "note.storeerr")
		default:
			req.DeviceRegistered = dv.Status == store.DeviceActive
			req.DeviceOwner, req.DeviceDepartment = dv.Owner, dv.Department
		}
	}
	return req, notes, ""
}
