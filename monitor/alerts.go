package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
)

// group is an open alert collecting repeats of one rule for one subject.
type group struct {
	alert *Alert
}

// fire raises the rule for the subject, or counts the occurrence into the
// open alert of the same rule and subject. With quiet set nothing is
// raised (learning). summarize is called only when an alert opens, so a
// grouped repeat costs no formatting.
func (m *Monitor) fire(quiet bool, name, kind, subject string, t time.Time, evidence []string, summarize func() (ja, en string)) {
	if quiet {
		return
	}
	rl := m.set.rules[name]
	if !rl.on {
		return
	}
	key := groupKey{name, kind, subject}
	if g := m.st.groups[key]; g != nil {
		if t.Sub(g.alert.Last) <= m.set.groupWindow {
			m.mu.Lock()
			a := g.alert
			a.Count++
			if t.After(a.Last) {
				a.Last = t
			}
			if n := len(evidence); n > 0 && evidence[n-1] != "" && len(a.Evidence) < maxEvidence {
				a.Evidence = append(a.Evidence, evidence[n-1])
			}
			m.mu.Unlock()
			return
		}
		m.close(key, g)
	}
	m.seq++
	summary, summaryEN := summarize()
	a := &Alert{
		ID:          fmt.Sprintf("%s-%04d", m.opts.now().UTC().Format("20060102T150405Z"), m.seq),
		Rule:        name,
		Severity:    rl.severity,
		Subject:     subject,
		SubjectKind: kind,
		Summary:     summary,
		SummaryEN:   summaryEN,
		First:       t,
		Last:        t,
		Count:       1,
	}
	for _, e := range evidence {
		if e != "" && len(a.Evidence) < maxEvidence {
			a.Evidence = append(a.Evidence, e)
		}
	}
	m.st.groups[key] = &group{alert: a}
	m.mu.Lock()
	if len(m.recent) == recentSize {
		m.recent = append(m.recent[:0], m.recent[1:]...)
	}
	m.recent = append(m.recent, a)
	snapshot := *a
	snapshot.Evidence = append([]string(nil), a.Evidence...)
	m.mu.Unlock()

	m.met.alerts.WithLabelValues(name, rl.severity).Inc()
	m.log.Warn("alert", "id", a.ID, "rule", name, "severity", rl.severity, "subject", subject, "summary", summaryEN)
	m.record(&snapshot, false)
	for _, c := range m.chans {
		if severityRank(rl.severity) > c.min {
			continue
		}
		if !c.limit.AllowN(m.opts.now(), 1) {
			m.met.notifications.WithLabelValues(c.n.name(), "rate_limited").Inc()
			continue
		}
		select {
		case c.q <- snapshot:
		default:
			m.met.notifications.WithLabelValues(c.n.name(), "dropped").Inc()
			m.log.Error("monitor: notification queue full; alert not sent", "channel", c.n.name(), "id", a.ID)
		}
	}
	if rl.response != "" {
		m.queueResponse(rl.response, &snapshot)
	}
}

// close ends an open alert. When repeats were grouped into it, a closing
// record with the final count goes to the audit trail.
func (m *Monitor) close(key groupKey, g *group) {
	delete(m.st.groups, key)
	m.mu.Lock()
	snapshot := *g.alert
	snapshot.Evidence = append([]string(nil), g.alert.Evidence...)
	m.mu.Unlock()
	if snapshot.Count > 1 {
		m.record(&snapshot, true)
	}
}

// sweep closes groups that went quiet, forgets expired state and reports
// records dropped since the last sweep.
func (m *Monitor) sweep(now time.Time) {
	for key, g := range m.st.groups {
		if now.Sub(g.alert.Last) > m.set.groupWindow {
			m.close(key, g)
		}
	}
	m.st.expire(now, m.set)
	if d := m.dropped.Load(); d > m.lastDrop {
		n := d - m.lastDrop
		m.lastDrop = d
		m.fire(false, config.RuleMonitorOverload, KindComponent, "monitor", now, nil, func() (string, string) {
			return fmt.Sprintf("監視機能が処理しきれず %d 件の記録を取りこぼしました（queue_size を見直してください）", n),
				fmt.Sprintf("The monitor fell behind and dropped %d records (review queue_size)", n)
		})
	}
}

// alertDetail is the JSON in an alert record's detail and the body of a
// webhook and a syslog message.
type alertDetail struct {
	*Alert
	// Closed marks the record written when a grouped alert ends.
	Closed bool `json:"closed,omitempty"`
}

// record writes the alert to the audit trail through the sink.
func (m *Monitor) record(a *Alert, closed bool) {
	if m.opts.sink == nil {
		return
	}
	d, _ := json.Marshal(alertDetail{Alert: a, Closed: closed})
	rec := &audit.Record{
		Time:     m.opts.now(),
		Event:    audit.EventAlert,
		Action:   a.Rule,
		Target:   a.Subject,
		Detail:   string(d),
		Rule:     "monitor:" + a.Rule,
		Reasons:  []string{a.Severity},
		Decision: "",
	}
	switch a.SubjectKind {
	case KindUser:
		rec.User = a.Subject
	case KindDevice:
		rec.Device = a.Subject
	case KindIP:
		rec.IP = a.Subject
	}
	if len(a.Evidence) > 0 {
		rec.RequestID = a.Evidence[len(a.Evidence)-1]
	}
	if err := m.opts.sink(rec); err != nil {
		m.log.Error("monitor: writing the alert to the audit trail", "id", a.ID, "err", err)
	}
}

// action is an automatic response waiting to be carried out.
type action struct {
	name  string
	alert Alert
}

func (m *Monitor) queueResponse(name string, a *Alert) {
	select {
	case m.actions <- action{name: name, alert: *a}:
	default:
		m.log.Error("monitor: response queue full; response not carried out", "action", name, "id", a.ID)
		m.met.responses.WithLabelValues(name, "dropped").Inc()
	}
}

// respond carries out automatic responses, one at a time, and audits each.
func (m *Monitor) respond(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case act := <-m.actions:
			m.respondOne(ctx, act)
		}
	}
}

func (m *Monitor) respondOne(ctx context.Context, act action) {
	a := &act.alert
	want := KindUser
	if act.name == ResponseRevokeDevice {
		want = KindDevice
	}
	var err error
	result := "ok"
	switch {
	case m.opts.responder == nil:
		result, err = "unavailable", fmt.Errorf("no responder configured")
	case a.SubjectKind != want:
		result, err = "unavailable", fmt.Errorf("%s needs a %s, the alert is about a %s", act.name, want, a.SubjectKind)
	default:
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = m.opts.responder(rctx, act.name, a.Subject)
		cancel()
		if err != nil {
			result = "error"
		}
	}
	m.met.responses.WithLabelValues(act.name, result).Inc()
	detail := map[string]string{"alert_id": a.ID, "rule": a.Rule, "result": result}
	decision := audit.DecisionAllow
	if err != nil {
		detail["error"] = err.Error()
		decision = audit.DecisionError
		m.log.Error("monitor: automatic response", "action", act.name, "subject", a.Subject, "id", a.ID, "err", err)
	} else {
		m.log.Warn("monitor: automatic response carried out", "action", act.name, "subject", a.Subject, "id", a.ID)
	}
	if m.opts.sink == nil {
		return
	}
	d, _ := json.Marshal(detail)
	rec := &audit.Record{
		Time: m.opts.now(), Event: audit.EventAdmin, User: "sekisho-monitor",
		Action: "monitor_" + act.name, Target: a.Subject, Detail: string(d),
		Rule: "monitor:" + a.Rule, Decision: decision, Enforced: true,
	}
	if len(a.Evidence) > 0 {
		rec.RequestID = a.Evidence[len(a.Evidence)-1]
	}
	if err := m.opts.sink(rec); err != nil {
		m.log.Error("monitor: auditing the automatic response", "id", a.ID, "err", err)
	}
}
