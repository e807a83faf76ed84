package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
)

// filterKeys are the query parameters of an audit search, as the flags of
// `sekisho audit query` (plus request_id).
var filterKeys = []string{"user", "device", "route", "class", "zone", "decision", "enforced", "event", "request_id", "since", "until"}

// maxFieldLen bounds a filter value; nothing legitimate is longer.
const maxFieldLen = 256

// errBadFilter is a filter the admin must correct; the page says which field.
type errBadFilter struct{ Field, Key string }

func (e *errBadFilter) Error() string { return "filter " + e.Field + ": " + e.Key }

// parseFilter reads an audit filter from query values. Times are RFC 3339,
// a datetime-local value ("2006-01-02T15:04") or a date, read in loc.
func parseFilter(q url.Values, loc *time.Location) (audit.Filter, error) {
	var f audit.Filter
	for _, k := range filterKeys {
		if len(q.Get(k)) > maxFieldLen {
			return f, &errBadFilter{Field: k, Key: "err.toolong"}
		}
	}
	f.User = strings.TrimSpace(q.Get("user"))
	f.Device = strings.TrimSpace(q.Get("device"))
	f.Route = strings.TrimSpace(q.Get("route"))
	f.Class = strings.TrimSpace(q.Get("class"))
	f.Zone = strings.TrimSpace(q.Get("zone"))
	f.RequestID = strings.TrimSpace(q.Get("request_id"))
	switch v := q.Get("decision"); v {
	case "", audit.DecisionAllow, audit.DecisionDeny, audit.DecisionStepUp, audit.DecisionError:
		f.Decision = v
	default:
		return f, &errBadFilter{Field: "decision", Key: "err.badvalue"}
	}
	switch v := q.Get("event"); v {
	case "", audit.EventAccess, audit.EventAuthn, audit.EventAdmin, audit.EventSystem, audit.EventAlert, audit.EventCheckpoint:
		f.Event = v
	default:
		return f, &errBadFilter{Field: "event", Key: "err.badvalue"}
	}
	switch q.Get("enforced") {
	case "":
	case "true":
		t := true
		f.Enforced = &t
	case "false":
		t := false
		f.Enforced = &t
	default:
		return f, &errBadFilter{Field: "enforced", Key: "err.badvalue"}
	}
	var err error
	if f.Since, err = parseTime(q.Get("since"), loc); err != nil {
		return f, &errBadFilter{Field: "since", Key: "err.badtime"}
	}
	if f.Until, err = parseTime(q.Get("until"), loc); err != nil {
		return f, &errBadFilter{Field: "until", Key: "err.badtime"}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, &errBadFilter{Field: "until", Key: "err.timeorder"}
	}
	return f, nil
}

// parseTime reads "" (zero), RFC 3339, "2006-01-02T15:04[:05]" or
// "2006-01-02" in loc.
func parseTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339, 2006-01-02T15:04 or 2006-01-02", s)
}

// inputTime formats t for a datetime-local input in the display zone.
func (c *Console) inputTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(c.loc).Format("2006-01-02T15:04")
}

// filterQuery is the filter's part of q, for links and the CSV export.
func filterQuery(q url.Values) url.Values {
	out := url.Values{}
	for _, k := range filterKeys {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return out
}

type searchData struct {
	Form       url.Values
	Records    []*audit.Record
	Total      int
	Page       int
	Pages      int
	PrevURL    string
	NextURL    string
	CSVURL     string
	Unreadable int
	From, To   int
	Routes     []string
	Zones      []string
	Classes    []string
	Capped     bool
}

// maxPages bounds how deep a search may page (pages × page size records
// are held in memory); narrow the filter or export CSV for more.
const maxPages = 200

// search lists matching records, newest first, a page at a time.
func (c *Console) search(w http.ResponseWriter, r *http.Request) {
	p := c.newPage(r, "audit", "nav.audit")
	q := r.URL.Query()
	if len(q) == 0 {
		// A first visit shows the last 24 hours rather than the whole trail.
		q = url.Values{"since": {c.inputTime(c.now().Add(-24 * time.Hour))}}
	}
	d := &searchData{Form: q, Routes: routeNames(c.d.Config), Zones: zoneNames(c.d.Config), Classes: classNames(c.d.Config)}
	p.Data = d
	f, err := parseFilter(q, c.loc)
	if err != nil {
		var bf *errBadFilter
		if errors.As(err, &bf) {
			p.Error = p.T(bf.Key, p.T("f."+bf.Field))
		}
		w.WriteHeader(http.StatusBadRequest)
		c.render(w, r, "audit", p)
		return
	}
	// Show the times as the date-time inputs expect them.
	form := url.Values{}
	for k, v := range q {
		form[k] = v
	}
	form.Set("since", c.inputTime(f.Since))
	form.Set("until", c.inputTime(f.Until))
	d.Form = form
	d.Page, _ = strconv.Atoi(q.Get("page"))
	if d.Page < 1 {
		d.Page = 1
	}
	if d.Page > maxPages {
		d.Page = maxPages
	}
	// Keep the newest page×size matches in a ring; the page is the oldest
	// size of them, listed newest first.
	capN := d.Page * c.pageSize
	ring := make([]*audit.Record, 0, min(capN, 4096))
	next := 0
	for rec, err := range c.query(r.Context(), f) {
		var le *audit.LineError
		switch {
		case errors.As(err, &le):
			d.Unreadable++
			continue
		case err != nil:
			c.internal(w, r, err)
			return
		}
		d.Total++
		if len(ring) < capN {
			ring = append(ring, rec)
		} else {
			ring[next] = rec
			next = (next + 1) % capN
		}
	}
	// Unroll the ring oldest→newest.
	ordered := append(append([]*audit.Record{}, ring[next:]...), ring[:next]...)
	d.Pages = (d.Total + c.pageSize - 1) / c.pageSize
	d.Capped = d.Pages > maxPages
	if d.Page <= d.Pages || d.Total == 0 {
		start := len(ordered) - d.Page*c.pageSize
		end := start + c.pageSize
		start = max(start, 0)
		end = min(max(end, 0), len(ordered))
		for i := end - 1; i >= start; i-- {
			d.Records = append(d.Records, ordered[i])
		}
	}
	d.From = (d.Page-1)*c.pageSize + 1
	d.To = d.From + len(d.Records) - 1
	fq := filterQuery(q)
	d.CSVURL = Prefix + "/audit.csv?" + fq.Encode()
	if d.Page > 1 {
		pq := filterQuery(q)
		pq.Set("page", strconv.Itoa(d.Page-1))
		d.PrevURL = Prefix + "/audit?" + pq.Encode()
	}
	if d.Page < d.Pages && d.Page < maxPages {
		nq := filterQuery(q)
		nq.Set("page", strconv.Itoa(d.Page+1))
		d.NextURL = Prefix + "/audit?" + nq.Encode()
	}
	c.render(w, r, "audit", p)
}

// exportCSV writes every record that matches, in chain order, as CSV
// (UTF-8 with BOM, CRLF, the columns of `sekisho audit query --format csv`).
// The export itself is an admin action and is recorded first.
func (c *Console) exportCSV(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := parseFilter(q, c.loc)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "err.badfilter", err)
		return
	}
	name := "sekisho-audit-" + c.now().In(c.loc).Format("20060102-150405") + ".csv"
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if r.Method == http.MethodHead {
		return
	}
	if err := c.record(r, "audit_export", "csv", filterQuery(q).Encode(), nil); err != nil {
		c.internal(w, r, err)
		return
	}
	cw, err := audit.NewCSVWriter(w)
	if err != nil {
		return
	}
	_ = cw.Write(audit.RecordColumns)
	for rec, err := range c.query(r.Context(), f) {
		if err != nil {
			var le *audit.LineError
			if errors.As(err, &le) {
				continue
			}
			c.log.Error("admin console: CSV export stopped", "err", err)
			break
		}
		if err := cw.Write(audit.RecordRow(rec, c.loc)); err != nil {
			return
		}
	}
	cw.Flush()
}

func routeNames(cfg *config.Config) []string {
	out := make([]string, 0, len(cfg.Routes)+1)
	for _, rt := range cfg.Routes {
		out = append(out, rt.Name)
	}
	return append(out, "admin")
}

func zoneNames(cfg *config.Config) []string {
	out := make([]string, 0, len(cfg.Zones)+1)
	for _, z := range cfg.Zones {
		out = append(out, z.Name)
	}
	return append(out, "external")
}

func classNames(cfg *config.Config) []string {
	out := make([]string, 0, len(cfg.Classes))
	for k := range cfg.Classes {
		out = append(out, k)
	}
	return sortedCopy(out)
}
