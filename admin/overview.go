package admin

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/store"
)

// verifyStatus is the last verification of the whole trail.
type verifyStatus struct {
	Checked    time.Time
	Result     *audit.VerifyResult
	Err        string // could not run (not a verdict on the trail)
	Configured bool
	// LastCheckpoint is the time of the newest checkpoint record found in
	// the last two days (zero: none).
	LastCheckpoint time.Time
}

type overviewData struct {
	Since, Until  time.Time
	Report        *audit.Report
	ClassChart    hchart
	HourChart     vchart
	ReasonChart   hchart
	ShadowChart   hchart
	Health        *verifyStatus
	Writable      string // "", "ok" or "failing"
	Staff         int
	StaffPasskey  int
	RevokedDevice int
	// Alerts are the monitoring alerts of the 24 hours, newest first (at
	// most maxOverviewAlerts of AlertsTotal).
	Alerts      []*alertView
	AlertsTotal int
	AlertsURL   string
}

// overview: the last 24 hours at a glance.
func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	p := c.newPage(r, "overview", "nav.overview")
	sum, err := c.report(r.Context())
	if err != nil {
		c.internal(w, r, err)
		return
	}
	rep := sum.rep
	d := &overviewData{Since: rep.Options.Since, Until: rep.Options.Until, Report: rep, Alerts: sum.alerts, AlertsTotal: sum.alertsTotal}
	d.AlertsURL = Prefix + "/audit?" + url.Values{"event": {audit.EventAlert}, "since": {c.inputTime(d.Since)}}.Encode()
	legend := []part{{Class: "seg-allow", Label: p.T("dec.allow")}, {Class: "seg-stepup", Label: p.T("dec.stepup")},
		{Class: "seg-deny", Label: p.T("dec.deny")}, {Class: "seg-error", Label: p.T("dec.error")}}
	var labels, hrefs []string
	var rows [][]part
	for _, cc := range rep.ByClass {
		labels = append(labels, classLabel(p, c.d.Config.Classes, cc.Key))
		hrefs = append(hrefs, Prefix+"/audit?"+url.Values{"class": {cc.Key}, "event": {"access"}, "since": {c.inputTime(d.Since)}}.Encode())
		rows = append(rows, []part{{"seg-allow", p.T("dec.allow"), cc.Allow}, {"seg-stepup", p.T("dec.stepup"), cc.StepUp},
			{"seg-deny", p.T("dec.deny"), cc.Deny}, {"seg-error", p.T("dec.error"), cc.Error}})
	}
	d.ClassChart = newHChart(p.T("ov.byclass"), labels, hrefs, rows, legend)

	hours := make([]string, 24)
	bars := make([][]part, 24)
	for h, cc := range rep.ByHour {
		hours[h] = cc.Key
		bars[h] = []part{{"seg-allow", p.T("dec.allow"), cc.Allow}, {"seg-stepup", p.T("dec.stepup"), cc.StepUp},
			{"seg-deny", p.T("dec.deny"), cc.Deny}, {"seg-error", p.T("dec.error"), cc.Error}}
	}
	d.HourChart = newVChart(p.T("ov.byhour"), hours, bars)

	labels, hrefs, rows = nil, nil, nil
	for i, kc := range rep.DenyReasons {
		if i == 10 {
			break
		}
		labels = append(labels, kc.Key)
		rows = append(rows, []part{{"seg-deny", kc.Key, kc.N}})
	}
	d.ReasonChart = newHChart(p.T("ov.reasons"), labels, nil, rows, nil)

	labels, hrefs, rows = nil, nil, nil
	for _, kc := range rep.ShadowWouldDeny {
		labels = append(labels, kc.Key)
		hrefs = append(hrefs, Prefix+"/audit?"+url.Values{"route": {kc.Key}, "decision": {"deny"}, "enforced": {"false"}, "since": {c.inputTime(d.Since)}}.Encode())
		rows = append(rows, []part{{"seg-shadow", kc.Key, kc.N}})
	}
	d.ShadowChart = newHChart(p.T("ov.shadow"), labels, hrefs, rows, nil)

	d.Health = c.health(false)
	if c.d.TrailHealthy != nil {
		d.Writable = "ok"
		if err := c.d.TrailHealthy(); err != nil {
			d.Writable = "failing"
			c.log.Warn("admin console: the audit trail is not writable", "err", err)
		}
	}
	if d.Staff, d.StaffPasskey, err = c.passkeyCoverage(r); err != nil {
		c.internal(w, r, err)
		return
	}
	devs, err := c.d.Store.ListDevices(r.Context())
	if err != nil {
		c.internal(w, r, err)
		return
	}
	for _, dv := range devs {
		if dv.Status == store.DeviceRevoked {
			d.RevokedDevice++
		}
	}
	p.Data = d
	c.render(w, r, "overview", p)
}

// summary is the overview's reading of the last 24 hours.
type summary struct {
	rep         *audit.Report
	alerts      []*alertView
	alertsTotal int
}

// report summarises the last 24 hours, reusing a summary younger than
// reportEvery: the overview is read often and the trail is large.
func (c *Console) report(ctx context.Context) (*summary, error) {
	c.reportMu.Lock()
	defer c.reportMu.Unlock()
	now := c.now()
	if c.lastReport != nil && now.Sub(c.lastReport.rep.Options.Until) < c.reportEvery {
		return c.lastReport, nil
	}
	oh := audit.DefaultOfficeHours()
	oh.Location = c.loc
	since, until := now.Add(-24*time.Hour), now.Add(time.Second)
	query := func(f audit.Filter) iter.Seq2[*audit.Record, error] { return c.query(ctx, f) }
	rep, err := audit.BuildReportFrom(query, audit.ReportOptions{Since: since, Until: until, MaxRows: 1, OfficeHours: oh})
	if err != nil {
		return nil, fmt.Errorf("summarising the last 24 hours: %w", err)
	}
	sum := &summary{rep: rep}
	if sum.alerts, sum.alertsTotal, err = c.recentAlerts(ctx, since, until); err != nil {
		return nil, err
	}
	c.lastReport = sum
	return sum, nil
}

// verifyNow re-runs the verification of the trail at once.
func (c *Console) verifyNow(w http.ResponseWriter, r *http.Request) {
	st := c.health(true)
	outcome := "intact"
	var failed error
	switch {
	case !st.Configured:
		outcome = "not_configured"
	case st.Err != "":
		outcome, failed = "error: "+st.Err, errors.New(st.Err)
	case !st.Result.OK():
		outcome = "tampered: " + st.Result.Problem.Error()
	}
	if err := c.record(r, "audit_verify", c.d.AuditDir, outcome, failed); err != nil {
		c.internal(w, r, err)
		return
	}
	redirect(w, r, "/", nil, "verified")
}

// health returns the last verification, running it again when it is older
// than verifyEvery or force is set. Verification reads the whole trail,
// so it is shared by every request meanwhile.
func (c *Console) health(force bool) *verifyStatus {
	c.verifyMu.Lock()
	defer c.verifyMu.Unlock()
	now := c.now()
	if !force && c.lastVerify != nil && now.Sub(c.lastVerify.Checked) < c.verifyEvery {
		return c.lastVerify
	}
	st := &verifyStatus{Checked: now, Configured: c.d.AuditKeys != nil}
	if st.Configured {
		res, err := audit.Verify(c.d.AuditDir, c.d.AuditKeys)
		if err != nil {
			st.Err = err.Error()
		}
		st.Result = res
	}
	for rec, err := range audit.Query(c.d.AuditDir, audit.Filter{Event: audit.EventCheckpoint, Since: now.Add(-48 * time.Hour)}) {
		if err == nil && rec != nil {
			st.LastCheckpoint = rec.Time
		}
	}
	c.lastVerify = st
	return st
}

// passkeyCoverage counts enabled staff and those with at least one passkey.
func (c *Console) passkeyCoverage(r *http.Request) (staff, withPasskey int, err error) {
	users, err := c.d.Store.ListUsers(r.Context())
	if err != nil {
		return 0, 0, err
	}
	sums, err := c.d.Store.CredentialSummaries(r.Context())
	if err != nil {
		return 0, 0, err
	}
	for _, u := range users {
		if u.Disabled {
			continue
		}
		staff++
		if sums[u.ID].Count > 0 {
			withPasskey++
		}
	}
	return staff, withPasskey, nil
}
