package audit

import (
	"errors"
	"fmt"
	"iter"
	"slices"
	"sort"
	"strings"
	"time"
)

// JST is Japan Standard Time (no daylight saving), the default zone of
// reports and office hours.
var JST = time.FixedZone("JST", 9*3600)

// OfficeHours says when staff normally work. Access to sensitive classes
// outside them is listed in reports.
type OfficeHours struct {
	// Start and End are times of day, e.g. 8h30m and 18h15m.
	Start, End time.Duration
	// Location of the office. Nil: JST.
	Location *time.Location
	// Weekdays worked. Nil: Monday to Friday.
	Weekdays []time.Weekday
	// Holidays are dates ("2006-01-02", local) that are not worked
	// (国民の祝日, 年末年始). Nil: none.
	Holidays map[string]bool
}

// DefaultOfficeHours is 08:30–18:15 Asia/Tokyo, Monday to Friday.
func DefaultOfficeHours() OfficeHours {
	return OfficeHours{Start: 8*time.Hour + 30*time.Minute, End: 18*time.Hour + 15*time.Minute, Location: JST}
}

// Within reports whether t falls in office hours.
func (o OfficeHours) Within(t time.Time) bool {
	loc := o.Location
	if loc == nil {
		loc = JST
	}
	lt := t.In(loc)
	days := o.Weekdays
	if days == nil {
		days = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	}
	if !slices.Contains(days, lt.Weekday()) || o.Holidays[lt.Format("2006-01-02")] {
		return false
	}
	y, m, d := lt.Date()
	tod := lt.Sub(time.Date(y, m, d, 0, 0, 0, 0, loc))
	return tod >= o.Start && tod < o.End
}

// ReportOptions shape [BuildReport].
type ReportOptions struct {
	// Since and Until bound the period: Since <= time < Until. Required.
	Since, Until time.Time
	// User or Device narrows the report to one person or PC and adds an
	// incident timeline.
	User, Device string
	// OfficeHours for the off-hours section. Zero: [DefaultOfficeHours].
	OfficeHours OfficeHours
	// SensitiveClasses are listed when reached off hours. Nil: 3A and 3B.
	SensitiveClasses []string
	// MaxRows bounds each listing (denials, off hours, timeline). 0: 1000.
	MaxRows int
}

// Counts are decisions counted by request.
type Counts struct {
	Key    string
	Allow  int
	Deny   int
	StepUp int
	Error  int
	Total  int
}

func (c *Counts) add(decision string) {
	c.Total++
	switch decision {
	case DecisionAllow:
		c.Allow++
	case DecisionDeny:
		c.Deny++
	case DecisionStepUp:
		c.StepUp++
	case DecisionError:
		c.Error++
	}
}

// KeyCount is a count by key.
type KeyCount struct {
	Key string
	N   int
}

// Entry is one request or event in a listing.
type Entry struct {
	Time      time.Time
	Seq       uint64
	Event     string
	Action    string
	RequestID string
	User      string
	Device    string
	IP        string
	Zone      string
	Route     string
	Class     string
	Method    string
	Path      string
	Decision  string
	Enforced  bool
	Reasons   []string
	Status    int
}

func entryOf(r *Record) Entry {
	return Entry{Time: r.Time, Seq: r.Seq, Event: r.Event, Action: r.Action, RequestID: r.RequestID, User: r.User,
		Device: r.Device, IP: r.IP, Zone: r.Zone, Route: r.Route, Class: r.Class, Method: r.Method, Path: r.Path,
		Decision: r.Decision, Enforced: r.Enforced, Reasons: r.Reasons, Status: r.Status}
}

// Report is the summary an auditor files. Requests are counted once per
// request_id (a sync-class request has a decision record and an outcome
// record with the same id).
type Report struct {
	Options   ReportOptions
	Generated time.Time
	Records   int // records read in the period (all events)
	Requests  int // access requests (distinct request_id)
	// Unreadable lines met while reading (run Verify for the cause).
	Unreadable int

	Total   Counts
	ByClass []Counts
	ByZone  []Counts
	ByHour  [24]Counts // hour of day in the office's zone

	DenyReasons []KeyCount
	Denials     []Entry
	// ShadowWouldDeny counts shadow-mode (enforced=false) denials per route:
	// what enforcing the rule would have blocked.
	ShadowWouldDeny []KeyCount
	// OffHours lists requests to sensitive classes outside office hours.
	OffHours []Entry
	// RevokedTried lists attempts by revoked devices or disabled users
	// (reasons containing "revoked" or "disabled").
	RevokedTried []Entry
	// Timeline is every record of the user or device, when one was given.
	Timeline []Entry
	// Truncated names the listings cut at MaxRows.
	Truncated []string

	// StaffWithoutPasskey needs the user store; see SetStaffWithoutPasskey.
	StaffWithoutPasskey      []string
	StaffWithoutPasskeyKnown bool
}

// SetStaffWithoutPasskey fills the "staff without a passkey" section. The
// trail cannot know who has no passkey; the caller (the CLI or the admin
// console, which hold the user store) passes the user ids.
func (r *Report) SetStaffWithoutPasskey(userIDs []string) {
	r.StaffWithoutPasskey = slices.Sorted(slices.Values(userIDs))
	r.StaffWithoutPasskeyKnown = true
}

// BuildReport reads the period from the trail in dir and summarises it. It
// does not verify the trail; an auditor runs [Verify] first.
func BuildReport(dir string, opts ReportOptions) (*Report, error) {
	return BuildReportFrom(func(f Filter) iter.Seq2[*Record, error] { return Query(dir, f) }, opts)
}

// BuildReportFrom is [BuildReport] over another source of records, such as
// the central table of a cluster ([QueryPostgres]): query is called once
// with the period's filter and must yield matching records in time order.
func BuildReportFrom(query func(Filter) iter.Seq2[*Record, error], opts ReportOptions) (*Report, error) {
	if opts.Since.IsZero() || opts.Until.IsZero() || !opts.Since.Before(opts.Until) {
		return nil, errors.New("report period: since must be before until")
	}
	if opts.OfficeHours.Start == 0 && opts.OfficeHours.End == 0 {
		opts.OfficeHours = DefaultOfficeHours()
	}
	if opts.OfficeHours.Location == nil {
		opts.OfficeHours.Location = JST
	}
	if opts.SensitiveClasses == nil {
		opts.SensitiveClasses = []string{"3A", "3B"}
	}
	if opts.MaxRows <= 0 {
		opts.MaxRows = 1000
	}
	rep := &Report{Options: opts, Generated: time.Now().UTC()}
	for h := range rep.ByHour {
		rep.ByHour[h].Key = fmt.Sprintf("%02d", h)
	}
	byClass := map[string]*Counts{}
	byZone := map[string]*Counts{}
	reasons := map[string]int{}
	shadow := map[string]int{}
	seen := map[string]bool{}
	truncated := map[string]bool{}
	add := func(list *[]Entry, name string, r *Record) {
		if len(*list) >= opts.MaxRows {
			truncated[name] = true
			return
		}
		*list = append(*list, entryOf(r))
	}
	f := Filter{Since: opts.Since, Until: opts.Until}
	for r, err := range query(f) {
		var le *LineError
		if errors.As(err, &le) {
			rep.Unreadable++
			continue
		}
		if err != nil {
			return nil, err
		}
		if opts.User != "" || opts.Device != "" {
			if (opts.User != "" && r.User != opts.User && r.Target != opts.User) ||
				(opts.Device != "" && r.Device != opts.Device && r.Target != opts.Device) {
				continue
			}
			add(&rep.Timeline, "timeline", r)
		}
		rep.Records++
		if hasRevokedReason(r.Reasons) {
			// Each attempt once: the first record of a request.
			if r.RequestID == "" || !seen["rv:"+r.RequestID] {
				seen["rv:"+r.RequestID] = true
				add(&rep.RevokedTried, "revoked", r)
			}
		}
		if r.Event != EventAccess {
			continue
		}
		if r.RequestID != "" {
			if seen[r.RequestID] {
				continue // the outcome record of a request already counted
			}
			seen[r.RequestID] = true
		}
		rep.Requests++
		rep.Total.add(r.Decision)
		countInto(byClass, r.Class, r.Decision)
		countInto(byZone, r.Zone, r.Decision)
		rep.ByHour[r.Time.In(opts.OfficeHours.Location).Hour()].add(r.Decision)
		if r.Decision == DecisionDeny {
			if r.Enforced {
				for _, why := range r.Reasons {
					reasons[why]++
				}
				if len(r.Reasons) == 0 {
					reasons["(none)"]++
				}
				add(&rep.Denials, "denials", r)
			} else {
				shadow[r.Route]++
			}
		}
		if slices.Contains(opts.SensitiveClasses, r.Class) && !opts.OfficeHours.Within(r.Time) {
			add(&rep.OffHours, "off_hours", r)
		}
	}
	rep.ByClass = sortedCounts(byClass)
	rep.ByZone = sortedCounts(byZone)
	rep.DenyReasons = sortedKeyCounts(reasons)
	rep.ShadowWouldDeny = sortedKeyCounts(shadow)
	for k := range truncated {
		rep.Truncated = append(rep.Truncated, k)
	}
	sort.Strings(rep.Truncated)
	return rep, nil
}

func hasRevokedReason(reasons []string) bool {
	for _, r := range reasons {
		if strings.Contains(r, "revoked") || strings.Contains(r, "disabled") {
			return true
		}
	}
	return false
}

func countInto(m map[string]*Counts, key, decision string) {
	if key == "" {
		key = "(none)"
	}
	c := m[key]
	if c == nil {
		c = &Counts{Key: key}
		m[key] = c
	}
	c.add(decision)
}

func sortedCounts(m map[string]*Counts) []Counts {
	out := make([]Counts, 0, len(m))
	for _, c := range m {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func sortedKeyCounts(m map[string]int) []KeyCount {
	out := make([]KeyCount, 0, len(m))
	for k, n := range m {
		out = append(out, KeyCount{k, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Key < out[j].Key
	})
	return out
}
