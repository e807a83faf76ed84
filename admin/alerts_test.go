package admin

import (
	"context"
	"encoding/json"
	"iter"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/monitor"
	"github.com/sekisho/sekisho/store/storetest"
)

// alertRecord is an alert record in the shape the monitor writes
// (monitor/alerts.go record): detail is the JSON of monitor.Alert plus
// "closed" on the record that ends a grouped alert.
func alertRecord(t *testing.T, a monitor.Alert, closed bool, at time.Time) *audit.Record {
	t.Helper()
	d, err := json.Marshal(struct {
		monitor.Alert
		Closed bool `json:"closed,omitempty"`
	}{a, closed})
	if err != nil {
		t.Fatal(err)
	}
	rec := &audit.Record{Time: at, Event: audit.EventAlert, Action: a.Rule, Target: a.Subject, Detail: string(d),
		Rule: "monitor:" + a.Rule, Reasons: []string{a.Severity}}
	switch a.SubjectKind {
	case monitor.KindUser:
		rec.User = a.Subject
	case monitor.KindDevice:
		rec.Device = a.Subject
	}
	if n := len(a.Evidence); n > 0 {
		rec.RequestID = a.Evidence[n-1]
	}
	return rec
}

// raiseCloneAlert has the real monitor raise counter_regression for user
// and write it to trail through its alert sink, as the gateway wires it.
func raiseCloneAlert(t *testing.T, trail *audit.Trail, now func() time.Time, user string, at time.Time) {
	t.Helper()
	m, err := monitor.New(config.Monitor{},
		monitor.WithAlertSink(func(r *audit.Record) error { return trail.AppendDurable(context.Background(), r) }),
		monitor.WithLogger(quiet()), monitor.WithClock(now), monitor.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	m.Observe(&audit.Record{Time: at, Event: audit.EventAuthn, Action: "counter_regression", User: user, IP: "10.1.5.6",
		RequestID: "r-clone-" + user, Decision: audit.DecisionDeny, Enforced: true})
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if got := m.Recent(1); len(got) != 1 || got[0].Subject != user {
		t.Fatalf("monitor raised %+v, want counter_regression for %s", got, user)
	}
}

// seedAlerts writes: a real counter_regression alert for alice (30 min
// ago), a denial_burst alert for device PC-002 grouped three times (its
// opening and closing records, 20 and 10 min ago), and an alert of
// yesterday that the overview must not show.
func seedAlerts(t *testing.T, e *env) {
	t.Helper()
	raiseCloneAlert(t, e.trail, e.clock.Now, "alice", t0.Add(-30*time.Minute))
	burst := monitor.Alert{ID: "20261123T004000Z-0002", Rule: "denial_burst", Severity: "high", Subject: "PC-002",
		SubjectKind: monitor.KindDevice, Summary: "端末 PC-002 で拒否が続いています", SummaryEN: "Repeated denials on device PC-002",
		First: t0.Add(-20 * time.Minute), Last: t0.Add(-20 * time.Minute), Count: 1, Evidence: []string{"r-d1"}}
	open := alertRecord(t, burst, false, t0.Add(-20*time.Minute))
	burst.Count, burst.Last, burst.Evidence = 3, t0.Add(-12*time.Minute), []string{"r-d1", "r-d2", "r-d3"}
	closing := alertRecord(t, burst, true, t0.Add(-10*time.Minute))
	old := alertRecord(t, monitor.Alert{ID: "20261122T000000Z-0001", Rule: "off_hours", Severity: "medium", Subject: "bob",
		SubjectKind: monitor.KindUser, Summary: "昨日の時間外アクセス", SummaryEN: "Yesterday's off-hours access", Count: 1},
		false, t0.Add(-30*time.Hour))
	e.seed(old, open, closing)
}

func TestOverviewShowsRecentAlerts(t *testing.T) {
	e := newEnv(t)
	seedDay(e)
	seedAlerts(t, e)

	ja := e.get(Prefix + "/")
	if ja.Status != 200 {
		t.Fatalf("overview: %d\n%s", ja.Status, ja.Body)
	}
	checkTranslated(t, "/", ja.Body)
	contains(t, ja.Body, "最近の警告（24時間）", `<span class="badge sev-critical">緊急</span>`, "counter_regression",
		"利用者 alice のパスキーの署名カウンタが戻りました", `<span class="badge sev-high">高</span>`, "denial_burst",
		"端末 PC-002 で拒否が続いています", `href="/.sekisho/admin/timeline?user=alice"`,
		`href="/.sekisho/admin/timeline?device=PC-002"`, "<td>3</td>", "event=alert")
	lacks(t, ja.Body, "昨日の時間外アクセス", "Repeated denials", "alerts-none")
	// Newest first, and the grouped alert is one row with its final count.
	if i, j := strings.Index(ja.Body, "PC-002 で拒否"), strings.Index(ja.Body, "alice のパスキー"); i < 0 || j < 0 || i > j {
		t.Errorf("alerts not newest first: PC-002 at %d, alice at %d", i, j)
	}
	if n := strings.Count(ja.Body, "端末 PC-002 で拒否が続いています"); n != 1 {
		t.Errorf("grouped alert shown %d times, want once", n)
	}

	en := e.do("GET", Prefix+"/", nil, map[string]string{"Accept-Language": "en"})
	checkTranslated(t, "/", en.Body)
	contains(t, en.Body, "Recent alerts (24 h)", `<span class="badge sev-critical">Critical</span>`,
		"went backwards (possible cloned authenticator)", "Repeated denials on device PC-002", `<span class="badge sev-high">High</span>`)
	lacks(t, en.Body, "端末 PC-002 で拒否", "Yesterday&#39;s off-hours access")

	// A trail without alerts says so.
	e2 := newEnv(t)
	seedDay(e2)
	contains(t, e2.get(Prefix+"/").Body, `id="alerts-none"`, "この24時間に監視機能の警告はありません")
}

func TestTimelineMarksAlerts(t *testing.T) {
	e := newEnv(t)
	seedDay(e)
	seedAlerts(t, e)
	since := url.QueryEscape(t0.Add(-3 * time.Hour).Format(time.RFC3339))

	ja := e.get(Prefix + "/timeline?user=alice&since=" + since)
	if ja.Status != 200 {
		t.Fatalf("timeline: %d\n%s", ja.Status, ja.Body)
	}
	checkTranslated(t, "/timeline", ja.Body)
	contains(t, ja.Body, `class="ev-alert row-alert sev-critical"`, "⚠ 監視警告", "counter_regression",
		"利用者 alice のパスキーの署名カウンタが戻りました", "r-clone-alice", `id="tl-alerts">監視警告 1<`)
	lacks(t, ja.Body, "PC-002 で拒否")

	en := e.do("GET", Prefix+"/timeline?user=alice&since="+since, nil, map[string]string{"Accept-Language": "en"})
	contains(t, en.Body, "⚠ Monitoring alert", "went backwards (possible cloned authenticator)", "Critical")
	lacks(t, en.Body, "利用者 alice のパスキー")

	dev := e.get(Prefix + "/timeline?device=PC-002&since=" + since)
	contains(t, dev.Body, `class="ev-alert row-alert sev-high"`, "端末 PC-002 で拒否が続いています", "r-d1, r-d2, r-d3",
		`id="tl-alerts">監視警告 2<`)
	lacks(t, dev.Body, "alice のパスキー")
}

// remoteTrail is another replica's trail: records the console's own trail
// does not hold.
func remoteTrail(t *testing.T, e *env) (dir string, trail *audit.Trail) {
	t.Helper()
	dir = t.TempDir()
	trail, err := audit.Open(config.Audit{Dir: dir, CheckpointEvery: 1000}, audit.WithClock(e.clock.Now), audit.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	for _, r := range []*audit.Record{
		access(-50, "remote", "PC-R1", "zaimu", "3B", "deny", true, "remote_reason"),
		access(-40, "remote", "PC-R1", "zaimu", "3B", "allow", true),
	} {
		r.RequestID = "rq" + r.Time.Format("150405")
		if err := trail.AppendDurable(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	raiseCloneAlert(t, trail, e.clock.Now, "remote", t0.Add(-35*time.Minute))
	return dir, trail
}

// checkReadsQuery asserts that every reading page shows the records of
// the console's Query source.
func checkReadsQuery(t *testing.T, e *env) {
	t.Helper()
	ov := e.get(Prefix + "/")
	contains(t, ov.Body, "remote_reason", "利用者 remote のパスキーの署名カウンタが戻りました")
	contains(t, e.get(Prefix+"/audit?user=remote").Body, "rq"+t0.Add(-50*time.Minute).Format("150405"), "remote_reason")
	tl := e.get(Prefix + "/timeline?user=remote&since=" + url.QueryEscape(t0.Add(-3*time.Hour).Format(time.RFC3339)))
	contains(t, tl.Body, "PC-R1", "remote_reason", "⚠ 監視警告")
	csv := e.get(Prefix + "/audit.csv?user=remote")
	if n := strings.Count(csv.Body, "remote_reason"); n != 1 {
		t.Errorf("CSV export holds remote_reason %d times, want 1:\n%s", n, csv.Body)
	}
	// The local trail alone has none of it.
	if recs, _, _ := audit.QueryAll(e.cfg.Audit.Dir, audit.Filter{User: "remote"}); len(recs) != 0 {
		t.Fatalf("local trail unexpectedly holds %d records of remote", len(recs))
	}
}

func TestQueryReplacesLocalTrail(t *testing.T) {
	e := newEnv(t)
	seedDay(e)
	dir, _ := remoteTrail(t, e)
	var calls atomic.Int64
	e.console.d.Query = func(ctx context.Context, f audit.Filter) iter.Seq2[*audit.Record, error] {
		calls.Add(1)
		return audit.Query(dir, f)
	}
	checkReadsQuery(t, e)
	if calls.Load() < 5 { // overview (report, alerts), search, timeline, csv
		t.Errorf("Query called %d times, want at least 5", calls.Load())
	}
	// The local trail's own traffic is no longer what the pages read.
	lacks(t, e.get(Prefix+"/audit?user=bob").Body, "zone_not_allowed")
}

// TestQueryCentralTable reads a second replica's records from the central
// PostgreSQL table, shipped as a cluster ships them.
func TestQueryCentralTable(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := t.Context()
	pool, err := audit.ConnectPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := audit.MigratePostgres(ctx, pool); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	seedDay(e)
	dir, _ := remoteTrail(t, e)
	sh, err := audit.NewPGShipper(pool, dir, "gw-b", audit.ShipperLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := sh.Sync(ctx); err != nil || n == 0 {
		t.Fatalf("shipping the remote trail: %d records, %v", n, err)
	}
	e.console.d.Query = func(ctx context.Context, f audit.Filter) iter.Seq2[*audit.Record, error] {
		return audit.QueryPostgres(ctx, pool, f)
	}
	checkReadsQuery(t, e)
}
