package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
)

func TestDenialBurstFiresAndGroups(t *testing.T) {
	h := start(t, config.Monitor{}, workday)
	// Nine denials in five minutes: below the default threshold of 10.
	for i := range 9 {
		h.feed(access(workday.Add(time.Duration(i)*20*time.Second), "suzuki", "", "10.1.2.3", "chonai", "jinji", "3B", fmt.Sprintf("/staff/%d", i), "deny", "no_matching_rule"))
	}
	if got := h.alerts(""); len(got) != 0 {
		t.Fatalf("9 denials raised %d alerts, want none: %+v", len(got), got[0])
	}
	// The tenth fires; twenty more within the group window are counted into it.
	for i := 9; i < 30; i++ {
		h.feed(access(workday.Add(time.Duration(i)*20*time.Second), "suzuki", "", "10.1.2.3", "chonai", "jinji", "3B", fmt.Sprintf("/staff/%d", i), "deny", "no_matching_rule"))
	}
	got := h.alerts(config.RuleDenialBurst)
	if len(got) != 1 {
		t.Fatalf("got %d denial_burst records, want 1 (grouped)", len(got))
	}
	r := got[0]
	if r.Target != "suzuki" || r.User != "suzuki" || r.Rule != "monitor:denial_burst" || !slices.Equal(r.Reasons, []string{"high"}) {
		t.Errorf("alert record = target %q user %q rule %q reasons %v", r.Target, r.User, r.Rule, r.Reasons)
	}
	d := detailOf(t, r)
	if len(d.Evidence) != 10 || !strings.Contains(d.Summary, "拒否") || d.SummaryEN == "" {
		t.Errorf("detail = %+v, want 10 evidence ids and a Japanese summary", d.Alert)
	}
	rec := h.m.Recent(0)
	if len(rec) != 1 || rec[0].Count != 21 || rec[0].Subject != "suzuki" || rec[0].SubjectKind != KindUser {
		t.Fatalf("Recent = %+v, want one user alert with count 21", rec)
	}
	if v := counterValue(t, h.reg, "sekisho_alerts_total", map[string]string{"rule": "denial_burst", "severity": "high"}); v != 1 {
		t.Errorf("sekisho_alerts_total{denial_burst,high} = %v, want 1", v)
	}

	// Quiet for longer than the group window: the group closes with a
	// record carrying the final count.
	h.clk.set(workday.Add(10*time.Minute + 31*time.Minute))
	h.flush()
	got = h.alerts(config.RuleDenialBurst)
	if len(got) != 2 {
		t.Fatalf("after the group window got %d records, want the opening and the closing one", len(got))
	}
	if d := detailOf(t, got[1]); !d.Closed || d.Count != 21 {
		t.Errorf("closing record = closed %v count %d, want closed with 21", d.Closed, d.Count)
	}
}

func TestDenialBurstPerAddressAndDevice(t *testing.T) {
	h := start(t, config.Monitor{}, workday)
	// 30 different user names from one address: credential probing.
	for i := range 30 {
		h.feed(access(workday.Add(time.Duration(i)*5*time.Second), fmt.Sprintf("u%02d", i), "", "203.0.113.9", "external", "zaimu", "2", "/", "deny", "zone_not_allowed"))
	}
	var ip, user int
	for _, a := range h.m.Recent(0) {
		switch a.SubjectKind {
		case KindIP:
			ip++
			if a.Subject != "203.0.113.9" {
				t.Errorf("address alert for %q", a.Subject)
			}
		case KindUser:
			user++
		}
	}
	if ip != 1 || user != 0 {
		t.Errorf("got %d address and %d user alerts, want 1 and 0", ip, user)
	}

	// One device, ten denials.
	for i := range 10 {
		h.feed(access(workday.Add(time.Minute+time.Duration(i)*time.Second), "", "PC-0042", "10.1.9.9", "chonai", "zaimu", "2", "/", "error", "bad_request"))
	}
	if got := h.alerts(config.RuleDenialBurst); !slices.ContainsFunc(got, func(r *audit.Record) bool { return r.Device == "PC-0042" }) {
		t.Error("ten denials for one device raised no device alert")
	}
}

func TestDenialBurstIgnoresRoutineRefusals(t *testing.T) {
	h := start(t, config.Monitor{}, workday)
	for i := range 50 {
		at := workday.Add(time.Duration(i) * time.Second)
		// The redirect to the login page before a session exists.
		h.m.Observe(access(at, "", "", "10.1.2.3", "chonai", "zaimu", "2", "/", "deny", "not_authenticated"))
		// Shadow mode: decided deny, but forwarded.
		r := access(at, "sato", "", "10.1.2.4", "chonai", "zaimu", "2", "/", "deny", "no_matching_rule")
		r.Enforced = false
		h.m.Observe(r)
		// Step-up is not a denial.
		h.m.Observe(access(at, "ito", "", "10.1.2.5", "chonai", "zaimu", "3A", "/", "stepup", "auth_too_old"))
	}
	h.flush()
	if got := h.alerts(""); len(got) != 0 {
		t.Fatalf("routine refusals raised %d alerts: %s", len(got), got[0].Detail)
	}
}

func TestDenialsOutsideTheWindowDoNotAddUp(t *testing.T) {
	h := start(t, config.Monitor{}, workday)
	// 20 denials, one every minute: never 10 within 5 minutes.
	for i := range 20 {
		h.feed(access(workday.Add(time.Duration(i)*time.Minute), "kato", "", "10.1.2.3", "chonai", "jinji", "3B", "/", "deny", "no_matching_rule"))
	}
	if got := h.alerts(""); len(got) != 0 {
		t.Fatalf("spread-out denials raised %d alerts", len(got))
	}
}

func TestLoginFailureBurst(t *testing.T) {
	h := start(t, config.Monitor{}, workday)
	fail := func(at time.Time, user, ip, reason string) *audit.Record {
		return &audit.Record{Time: at, Event: audit.EventAuthn, Action: "login_failure", User: user, IP: ip, Zone: "telework",
			Decision: audit.DecisionDeny, Enforced: true, Reasons: []string{reason}, RequestID: "r" + at.Format("150405")}
	}
	for i := range 4 {
		h.feed(fail(workday.Add(time.Duration(i)*time.Minute), "takahashi", "10.200.0.7", "signature"))
	}
	if len(h.alerts("")) != 0 {
		t.Fatal("4 login failures raised an alert; the threshold is 5")
	}
	h.feed(fail(workday.Add(5*time.Minute), "takahashi", "10.200.0.7", "signature"))
	got := h.alerts(config.RuleLoginFailureBurst)
	if len(got) != 1 || got[0].Target != "takahashi" {
		t.Fatalf("got %v, want one login_failure_burst for takahashi", got)
	}
	if !strings.Contains(detailOf(t, got[0]).Summary, "ログイン失敗") {
		t.Errorf("summary %q", detailOf(t, got[0]).Summary)
	}
}

func TestBulkReadCeilingAndBaseline(t *testing.T) {
	day0 := jst(2026, 11, 16, 9, 0)
	h := start(t, config.Monitor{}, day0)
	// Eight ordinary hours for yamada: 20 distinct resident records an hour.
	for hr := range 8 {
		for i := range 20 {
			at := day0.Add(time.Duration(hr)*time.Hour + time.Duration(i)*time.Minute)
			h.m.Observe(access(at, "yamada", "PC-1", "10.1.0.5", "chonai", "juki", "3B", fmt.Sprintf("/residents/%d", hr*100+i), "allow"))
		}
	}
	h.clk.set(day0.Add(8 * time.Hour))
	h.flush()
	if len(h.alerts("")) != 0 {
		t.Fatalf("ordinary reading raised %v", h.alerts("")[0].Detail)
	}
	// The ninth hour: 101 distinct records, above 5× the baseline of 20.
	at := day0.Add(9 * time.Hour)
	h.clk.set(at)
	for i := range 101 {
		h.m.Observe(access(at.Add(time.Duration(i)*10*time.Second), "yamada", "PC-1", "10.1.0.5", "chonai", "juki", "3B", fmt.Sprintf("/residents/%d", 5000+i), "allow"))
	}
	h.flush()
	got := h.alerts(config.RuleBulkRead)
	if len(got) != 1 || got[0].Target != "yamada" {
		t.Fatalf("got %d bulk_read alerts, want 1 for yamada", len(got))
	}
	if d := detailOf(t, got[0]); !strings.Contains(d.Summary, "倍") {
		t.Errorf("summary %q should say it is a multiple of the baseline", d.Summary)
	}

	// A user with no history: only the ceiling (300 distinct paths) applies.
	for i := range 300 {
		h.m.Observe(access(at.Add(time.Duration(i)*time.Second), "newcomer", "PC-2", "10.1.0.6", "chonai", "juki", "3A", fmt.Sprintf("/residents/%d", i), "allow"))
	}
	h.flush()
	if slices.ContainsFunc(h.alerts(config.RuleBulkRead), func(r *audit.Record) bool { return r.Target == "newcomer" }) {
		t.Fatal("300 distinct paths raised bulk_read; the ceiling is 300")
	}
	// Repeating a path is not a new path.
	for range 50 {
		h.m.Observe(access(at.Add(20*time.Minute), "newcomer", "PC-2", "10.1.0.6", "chonai", "juki", "3A", "/residents/1", "allow"))
	}
	h.flush()
	if slices.ContainsFunc(h.alerts(config.RuleBulkRead), func(r *audit.Record) bool { return r.Target == "newcomer" }) {
		t.Fatal("repeated reads of one path counted as distinct")
	}
	h.feed(access(at.Add(21*time.Minute), "newcomer", "PC-2", "10.1.0.6", "chonai", "juki", "3A", "/residents/export?all=1", "allow"))
	if !slices.ContainsFunc(h.alerts(config.RuleBulkRead), func(r *audit.Record) bool { return r.Target == "newcomer" }) {
		t.Fatal("301 distinct paths raised no bulk_read")
	}
	// Class 2 reading is never counted.
	for i := range 500 {
		h.m.Observe(access(at.Add(time.Duration(i)*time.Second), "reader", "PC-3", "10.1.0.7", "chonai", "groupware", "2", fmt.Sprintf("/docs/%d", i), "allow"))
	}
	h.flush()
	if slices.ContainsFunc(h.alerts(config.RuleBulkRead), func(r *audit.Record) bool { return r.Target == "reader" }) {
		t.Fatal("class 2 reading raised bulk_read")
	}
}

func TestOffHours(t *testing.T) {
	h := start(t, config.Monitor{Holidays: []string{"2026-11-27"}}, workday)
	cases := []struct {
		name  string
		at    time.Time
		class string
		want  bool
	}{
		{"working hours", jst(2026, 11, 24, 10, 0), "3A", false},
		{"overtime before 20:00", jst(2026, 11, 24, 19, 59), "3B", false},
		{"class 2 at night", jst(2026, 11, 24, 23, 0), "2", false},
		{"late night", jst(2026, 11, 24, 23, 30), "3A", true},
		{"early morning", jst(2026, 11, 25, 6, 0), "3B", true},
		{"saturday", jst(2026, 11, 28, 11, 0), "3B", true},
		{"national holiday 勤労感謝の日", jst(2026, 11, 23, 11, 0), "3A", true},
		{"configured closed day", jst(2026, 11, 27, 11, 0), "3A", true},
		{"year-end closure", jst(2026, 12, 30, 11, 0), "3A", true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			user := fmt.Sprintf("user%d", i)
			before := len(h.alerts(config.RuleOffHours))
			h.feed(access(c.at, user, "PC-1", "10.1.0.5", "chonai", "kokuho", c.class, "/x", "allow"))
			got := h.alerts(config.RuleOffHours)
			if fired := len(got) > before; fired != c.want {
				t.Fatalf("fired = %v, want %v", fired, c.want)
			}
			if c.want && got[len(got)-1].Target != user {
				t.Errorf("alert for %q, want %q", got[len(got)-1].Target, user)
			}
		})
	}
	holiday := h.alerts(config.RuleOffHours)
	if !slices.ContainsFunc(holiday, func(r *audit.Record) bool { return strings.Contains(detailOf(t, r).Summary, "勤労感謝の日") }) {
		t.Error("no off-hours summary names the holiday 勤労感謝の日")
	}
	// A denied request off hours is not access.
	h.feed(access(jst(2026, 11, 24, 23, 45), "night", "PC-1", "10.1.0.5", "chonai", "kokuho", "3A", "/x", "deny", "outside_hours"))
	if slices.ContainsFunc(h.alerts(config.RuleOffHours), func(r *audit.Record) bool { return r.Target == "night" }) {
		t.Error("a denied request raised off_hours")
	}
}

func TestHolidayCalendar(t *testing.T) {
	hs := Holidays()
	for date, name := range map[string]string{
		"2026-01-01": "元日", "2026-01-12": "成人の日", "2026-03-20": "春分の日", "2026-05-06": "振替休日",
		"2026-09-22": "国民の休日", "2026-09-23": "秋分の日", "2027-03-22": "振替休日", "2027-07-19": "海の日",
		"2027-10-11": "スポーツの日", "2027-12-31": "年末年始",
	} {
		if hs[date] != name {
			t.Errorf("Holidays()[%s] = %q, want %q", date, hs[date], name)
		}
	}
	// Every listed day parses, and Monday holidays fall on Mondays.
	for date, name := range hs {
		d, err := time.Parse(time.DateOnly, date)
		if err != nil {
			t.Errorf("bad date %q", date)
			continue
		}
		switch name {
		case "成人の日", "海の日", "敬老の日", "スポーツの日", "振替休日":
			if d.Weekday() != time.Monday && !(name == "振替休日" && date == "2026-05-06") {
				t.Errorf("%s %s is a %s", name, date, d.Weekday())
			}
		}
	}
	if n := len(hs); n != 45 {
		t.Errorf("calendar has %d days, want 45", n)
	}
}

func TestRevokedAccess(t *testing.T) {
	h := start(t, config.Monitor{}, workday)
	// A disabled user tries to log in: authn says user_disabled.
	h.feed(&audit.Record{Time: workday, Event: audit.EventAuthn, Action: "login_failure", User: "ex-staff", IP: "10.200.1.1",
		Decision: audit.DecisionDeny, Enforced: true, Reasons: []string{"user_disabled"}, RequestID: "r1"})
	got := h.alerts(config.RuleRevokedAccess)
	if len(got) != 1 || got[0].Target != "ex-staff" || !slices.Equal(got[0].Reasons, []string{"critical"}) {
		t.Fatalf("got %v, want one critical revoked_access for ex-staff", got)
	}

	// IT revokes a user and a device; their requests just after (in flight)
	// are ignored, later ones raise the alert.
	t1 := workday.Add(time.Hour)
	h.feed(&audit.Record{Time: t1, Event: audit.EventAdmin, User: "admin", Action: "revoke_user", Target: "mori", Decision: "allow", Enforced: true},
		&audit.Record{Time: t1, Event: audit.EventAdmin, User: "admin", Action: "revoke_device", Target: "PC-0666", Decision: "allow", Enforced: true})
	h.feed(access(t1.Add(time.Second), "mori", "PC-0100", "10.1.0.9", "chonai", "zaimu", "2", "/", "allow"))
	if n := len(h.alerts(config.RuleRevokedAccess)); n != 1 {
		t.Fatalf("a request one second after the revocation raised an alert")
	}
	h.feed(access(t1.Add(time.Minute), "mori", "PC-0100", "10.1.0.9", "chonai", "zaimu", "2", "/", "deny", "session_refused"))
	h.feed(access(t1.Add(time.Minute), "", "PC-0666", "10.1.0.10", "chonai", "zaimu", "2", "/", "deny", "device_not_registered"))
	subjects := map[string]bool{}
	for _, r := range h.alerts(config.RuleRevokedAccess) {
		subjects[r.Target] = true
	}
	if !subjects["mori"] || !subjects["PC-0666"] {
		t.Fatalf("revoked subjects alerted: %v, want mori and PC-0666", subjects)
	}
	// Re-enabled: no more alerts.
	h.feed(&audit.Record{Time: t1.Add(2 * time.Hour), Event: audit.EventAdmin, User: "admin", Action: "user_enable", Target: "mori", Decision: "allow", Enforced: true})
	before := len(h.alerts(config.RuleRevokedAccess))
	h.feed(access(t1.Add(3*time.Hour), "mori", "PC-0100", "10.1.0.9", "chonai", "zaimu", "2", "/", "allow"))
	if len(h.alerts(config.RuleRevokedAccess)) != before {
		t.Error("a re-enabled user raised revoked_access")
	}
}

func TestCounterRegression(t *testing.T) {
	h := start(t, config.Monitor{}, workday)
	h.feed(&audit.Record{Time: workday, Event: audit.EventAuthn, Action: "counter_regression", User: "abe", IP: "10.200.3.3",
		Target: "Y3JlZA", Decision: audit.DecisionDeny, Enforced: true, Reasons: []string{"stored 41, presented 12"}, RequestID: "r9"})
	got := h.alerts(config.RuleCounterRegression)
	if len(got) != 1 || got[0].Target != "abe" || got[0].RequestID != "r9" {
		t.Fatalf("got %v, want one counter_regression for abe with evidence r9", got)
	}
	if d := detailOf(t, got[0]); d.Severity != "critical" || !strings.Contains(d.Summary, "署名カウンタ") {
		t.Errorf("detail %+v", d.Alert)
	}
}

func TestNewDeviceAndZoneAfterLearning(t *testing.T) {
	h := start(t, config.Monitor{}, workday)
	day1 := jst(2026, 11, 16, 9, 0)
	// During the first day ogawa uses two PCs from two zones: learned.
	h.feed(access(day1, "ogawa", "PC-1", "10.1.0.5", "chonai", "zaimu", "2", "/", "allow"),
		access(day1.Add(3*time.Hour), "ogawa", "PC-2", "10.200.0.5", "telework", "zaimu", "2", "/", "allow"))
	// A week later: known devices and zones are quiet.
	week := day1.Add(7 * 24 * time.Hour)
	h.feed(access(week, "ogawa", "PC-2", "10.1.0.5", "chonai", "zaimu", "2", "/", "allow"))
	if n := len(h.alerts("")); n != 0 {
		t.Fatalf("known devices raised %d alerts", n)
	}
	h.feed(access(week.Add(time.Minute), "ogawa", "PC-9", "203.0.113.5", "external", "zaimu", "2", "/", "allow"))
	dev, zone := h.alerts(config.RuleNewDevice), h.alerts(config.RuleNewZone)
	if len(dev) != 1 || !strings.Contains(detailOf(t, dev[0]).Summary, "PC-9") {
		t.Errorf("new_device = %v", dev)
	}
	if len(zone) != 1 || !strings.Contains(detailOf(t, zone[0]).Summary, "external") {
		t.Errorf("new_zone = %v", zone)
	}
}

func TestWarmFromPastRecords(t *testing.T) {
	day1 := jst(2026, 11, 16, 9, 0)
	week := day1.Add(7 * 24 * time.Hour)
	s := &sink{}
	m, err := New(config.Monitor{}, WithClock(func() time.Time { return week }), WithAlertSink(s.append),
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	past := func(yield func(*audit.Record, error) bool) {
		_ = yield(access(day1, "kimura", "PC-5", "10.1.0.8", "chonai", "zaimu", "2", "/", "allow"), nil) &&
			yield(nil, &audit.LineError{File: "x", Line: 3, Err: errors.New("torn")}) &&
			// Off hours in the past: learned, never alerted.
			yield(access(day1.Add(14*time.Hour), "kimura", "PC-5", "10.1.0.8", "chonai", "juki", "3A", "/", "allow"), nil)
	}
	n, err := m.Warm(context.Background(), past)
	if err != nil || n != 2 {
		t.Fatalf("Warm = %d, %v; want 2 records", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = m.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	m.Observe(access(week, "kimura", "PC-5", "10.1.0.8", "chonai", "zaimu", "2", "/", "allow"))
	m.Observe(access(week.Add(time.Second), "kimura", "PC-6", "10.1.0.8", "chonai", "zaimu", "2", "/", "allow"))
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := m.Recent(0)
	if len(got) != 1 || got[0].Rule != config.RuleNewDevice || !strings.Contains(got[0].Summary, "PC-6") {
		t.Fatalf("alerts = %+v, want only new_device for PC-6 (the user is known from the past)", got)
	}
	if _, err := m.Warm(ctx, past); !errors.Is(err, ErrWarmAfterRun) {
		t.Errorf("Warm after Run = %v", err)
	}
	bad := func(yield func(*audit.Record, error) bool) { yield(nil, errors.New("disk gone")) }
	m2, _ := New(config.Monitor{})
	if _, err := m2.Warm(ctx, bad); err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Errorf("Warm over an I/O error = %v", err)
	}
}

func TestAuditFailure(t *testing.T) {
	h := start(t, config.Monitor{}, workday)
	h.m.ReportHealth("audit", errors.New("disk full"))
	h.m.ReportHealth("audit", errors.New("disk full"))
	h.m.ReportHealth("sink tls://siem:6514", errors.New("connection refused"))
	h.m.ReportHealth("audit", nil) // recovered: nothing to raise
	h.flush()
	got := h.alerts(config.RuleAuditFailure)
	if len(got) != 2 {
		t.Fatalf("got %d audit_failure records, want 2 (audit grouped, sink)", len(got))
	}
	if d := detailOf(t, got[0]); d.Subject != "audit" || !strings.Contains(d.Summary, "disk full") {
		t.Errorf("first = %+v", d.Alert)
	}
	// The trail's own system record after it recovers.
	h.clk.set(workday.Add(2 * time.Hour))
	h.feed(&audit.Record{Time: workday.Add(2 * time.Hour), Event: audit.EventSystem, Action: audit.ActionWriteFailed, Detail: `{"from":"…","error":"no space left on device"}`})
	if got := h.alerts(config.RuleAuditFailure); len(got) < 3 || !strings.Contains(detailOf(t, got[len(got)-1]).Summary, "no space") {
		t.Errorf("write_failed record raised no alert: %v", got)
	}
}

func TestOverloadDropsAndReports(t *testing.T) {
	clk := &clock{t: workday}
	s := &sink{}
	m, err := New(config.Monitor{QueueSize: 4}, WithClock(clk.now), WithAlertSink(s.append), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	// Not running yet: the queue fills and Observe drops without blocking.
	for i := range 10 {
		m.Observe(access(workday.Add(time.Duration(i)*time.Second), "u", "", "10.1.0.1", "chonai", "zaimu", "2", "/", "allow"))
	}
	if m.Dropped() != 6 {
		t.Fatalf("Dropped = %d, want 6", m.Dropped())
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = m.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
	defer fcancel()
	if err := m.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	rec := m.Recent(1)
	if len(rec) != 1 || rec[0].Rule != config.RuleMonitorOverload || !strings.Contains(rec[0].Summary, "6 件") {
		t.Fatalf("Recent = %+v, want monitor_overload naming 6 records", rec)
	}
}

func TestResponder(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	responder := func(ctx context.Context, action, subject string) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, action+" "+subject)
		if subject == "fail-me" {
			return errors.New("store down")
		}
		return nil
	}
	cfg := config.Monitor{Rules: map[string]config.MonitorRule{
		config.RuleCounterRegression: {Response: ResponseRevokeSession},
		config.RuleDenialBurst:       {Response: ResponseRevokeDevice, Threshold: 2, IPThreshold: 1000},
	}}
	h := start(t, cfg, workday, WithResponder(responder))
	h.feed(&audit.Record{Time: workday, Event: audit.EventAuthn, Action: "counter_regression", User: "abe", RequestID: "r1", Decision: "deny", Enforced: true})
	h.feed(&audit.Record{Time: workday, Event: audit.EventAuthn, Action: "counter_regression", User: "fail-me", RequestID: "r2", Decision: "deny", Enforced: true})
	// denial_burst for a device: revoke_device applies; for the user of the
	// same records it does not (a user is not a device).
	for i := range 2 {
		h.feed(access(workday.Add(time.Duration(i)*time.Second), "", "PC-7", "10.1.0.1", "chonai", "zaimu", "2", "/", "deny", "no_matching_rule"))
	}
	deadline := time.Now().Add(5 * time.Second)
	var admin []*audit.Record
	for time.Now().Before(deadline) {
		admin = admin[:0]
		for _, r := range h.sink.records() {
			if r.Event == audit.EventAdmin {
				admin = append(admin, r)
			}
		}
		if len(admin) == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	slices.Sort(calls)
	got := strings.Join(calls, "; ")
	mu.Unlock()
	if got != "revoke_device PC-7; revoke_session abe; revoke_session fail-me" {
		t.Errorf("responder calls = %q", got)
	}
	if len(admin) != 3 {
		t.Fatalf("got %d response audit records, want 3", len(admin))
	}
	results := map[string]string{}
	for _, r := range admin {
		results[r.Target] = r.Action + " " + r.Decision
	}
	want := map[string]string{"abe": "monitor_revoke_session allow", "fail-me": "monitor_revoke_session error", "PC-7": "monitor_revoke_device allow"}
	for k, v := range want {
		if results[k] != v {
			t.Errorf("response record for %s = %q, want %q", k, results[k], v)
		}
	}
}

func TestDisabledMonitorIsInert(t *testing.T) {
	off := false
	m, err := New(config.Monitor{Enabled: &off})
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(access(workday, "u", "", "1.2.3.4", "", "r", "3A", "/", "deny"))
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(m.Recent(0)) != 0 || m.Dropped() != 0 {
		t.Error("a disabled monitor did something")
	}
}

func TestRuleDisabled(t *testing.T) {
	off := false
	h := start(t, config.Monitor{Rules: map[string]config.MonitorRule{config.RuleOffHours: {Enabled: &off}}}, workday)
	h.feed(access(jst(2026, 11, 28, 23, 0), "u", "PC-1", "10.1.0.1", "chonai", "juki", "3A", "/", "allow"))
	if n := len(h.alerts("")); n != 0 {
		t.Fatalf("a disabled rule raised %d alerts", n)
	}
}

func TestHealthCheckPolled(t *testing.T) {
	var mu sync.Mutex
	var failure error
	check := func() error {
		mu.Lock()
		defer mu.Unlock()
		return failure
	}
	h := start(t, config.Monitor{}, workday, WithHealthCheck("audit", check))
	mu.Lock()
	failure = errors.New("audit trail unhealthy: disk full")
	mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for len(h.alerts(config.RuleAuditFailure)) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	got := h.alerts(config.RuleAuditFailure)
	if len(got) != 1 || got[0].Target != "audit" || !strings.Contains(detailOf(t, got[0]).Summary, "disk full") {
		t.Fatalf("polled failure raised %v", got)
	}
}

func TestRunTwice(t *testing.T) {
	h := start(t, config.Monitor{}, workday)
	h.flush() // Run is running once Flush returns
	if err := h.m.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run = %v, want ErrRunning", err)
	}
}

func TestSyncClassRecordsCountOnce(t *testing.T) {
	h := start(t, config.Monitor{}, workday)
	night := jst(2026, 11, 24, 23, 0)
	for i := range 3 {
		// The durable decision record, then the outcome with the same id.
		r := access(night.Add(time.Duration(i)*time.Minute), "sato", "PC-1", "10.1.0.5", "chonai", "juki", "3A", fmt.Sprintf("/r/%d", i), "allow")
		out := *r
		out.Status, out.Bytes = 200, 1024
		h.feed(r, &out)
	}
	got := h.m.Recent(0)
	if len(got) != 1 || got[0].Rule != config.RuleOffHours || got[0].Count != 3 {
		t.Fatalf("Recent = %+v, want one off_hours alert counting 3 requests", got)
	}
}
