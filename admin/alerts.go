package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sekisho/sekisho/audit"
)

// maxOverviewAlerts bounds the overview's list of recent alerts.
const maxOverviewAlerts = 20

// alertView is a monitoring alert as the console shows it, read from the
// audit record the monitor writes (event "alert", action the rule, target
// the subject, detail the JSON of monitor.Alert). The trail, not the
// monitor's memory, is the source: it is the same on every replica and
// survives restarts.
type alertView struct {
	ID          string    `json:"id"`
	Rule        string    `json:"rule"`
	Severity    string    `json:"severity"`
	Subject     string    `json:"subject"`
	SubjectKind string    `json:"subject_kind"`
	Summary     string    `json:"summary"`
	SummaryEN   string    `json:"summary_en"`
	First       time.Time `json:"first"`
	Last        time.Time `json:"last"`
	Count       int       `json:"count"`
	Evidence    []string  `json:"evidence"`
	Closed      bool      `json:"closed"`
	// Time is when the record was written.
	Time time.Time `json:"-"`
}

// alertOf reads an alert record; nil for any other record. A detail that
// does not parse still shows the rule, subject and severity of the record.
func alertOf(rec *audit.Record) *alertView {
	if rec == nil || rec.Event != audit.EventAlert {
		return nil
	}
	v := &alertView{}
	if json.Unmarshal([]byte(rec.Detail), v) != nil {
		v = &alertView{}
	}
	if v.Rule == "" {
		v.Rule = rec.Action
	}
	if v.Subject == "" {
		v.Subject = rec.Target
	}
	if v.Severity == "" && len(rec.Reasons) > 0 {
		v.Severity = rec.Reasons[0]
	}
	if v.Count < 1 {
		v.Count = 1
	}
	if v.Last.IsZero() {
		v.Last = rec.Time
	}
	v.Time = rec.Time
	return v
}

// Text is the summary in the page language, falling back to the other.
func (v *alertView) Text(lang string) string {
	if lang == "en" && v.SummaryEN != "" || v.Summary == "" {
		return v.SummaryEN
	}
	return v.Summary
}

// SevLabel is the severity in the page language; an unknown one as it is.
func (v *alertView) SevLabel(lang string) string {
	if hasMessage("sev." + v.Severity) {
		return tr(lang, "sev."+v.Severity)
	}
	return v.Severity
}

// recentAlerts reads the alert records in [since, until), newest first, at
// most maxOverviewAlerts of them, and how many alerts there were. The
// records of one alert (the opening one and, when repeats were grouped,
// the closing one with the final count) show as one, with the newest.
func (c *Console) recentAlerts(ctx context.Context, since, until time.Time) ([]*alertView, int, error) {
	var out []*alertView
	byID := map[string]int{}
	for rec, err := range c.query(ctx, audit.Filter{Event: audit.EventAlert, Since: since, Until: until}) {
		var le *audit.LineError
		switch {
		case errors.As(err, &le):
			continue
		case err != nil:
			return nil, 0, fmt.Errorf("reading recent alerts: %w", err)
		}
		v := alertOf(rec)
		if v == nil {
			continue
		}
		if i, ok := byID[v.ID]; ok && v.ID != "" {
			out[i] = v
			continue
		}
		byID[v.ID] = len(out)
		out = append(out, v)
	}
	slices.SortStableFunc(out, func(a, b *alertView) int { return b.Last.Compare(a.Last) })
	total := len(out)
	if total > maxOverviewAlerts {
		out = out[:maxOverviewAlerts]
	}
	return out, total, nil
}
