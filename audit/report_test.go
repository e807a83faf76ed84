package audit

import (
	"bytes"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func jst(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, JST)
	if err != nil {
		panic(err)
	}
	return t
}

// reportTrail writes a small scenario and returns its directory.
func reportTrail(t *testing.T) string {
	t.Helper()
	cfg := testConfig(t)
	clk := newFakeClock()
	clk.Set(jst("2026-11-16 09:00"))
	tr, err := Open(cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	add := func(r Record) {
		t.Helper()
		clk.Set(r.Time) // written when it happened, as in a running gateway
		if err := tr.AppendDurable(t.Context(), &r); err != nil {
			t.Fatal(err)
		}
	}
	acc := func(at, id, user, device, class, route, decision string, enforced bool, reasons ...string) Record {
		return Record{Time: jst(at), Event: EventAccess, RequestID: id, User: user, Device: device, Class: class,
			Route: route, Zone: "chonai", IP: "10.1.0.5", Method: "GET", Path: "/", Decision: decision, Enforced: enforced, Reasons: reasons}
	}
	r1 := acc("2026-11-16 10:00", "r1", "tanaka", "pc-1", "3B", "zaimu", DecisionAllow, true)
	add(r1)
	r1.Status, r1.Bytes, r1.DurationMS = 200, 512, 3.2 // the outcome record of the same request
	add(r1)
	add(acc("2026-11-16 22:00", "r2", "tanaka", "pc-1", "3A", "jinji", DecisionAllow, true))
	add(acc("2026-11-17 09:00", "r4", "sato", "pc-3", "2", "bunsho", DecisionDeny, false, "outside_hours"))
	add(Record{Time: jst("2026-11-17 09:30"), Event: EventAuthn, Action: "login", User: "yamada", Decision: DecisionDeny, Reasons: []string{"user_disabled"}})
	add(acc("2026-11-17 09:40", "r6", "", "pc-9", "2", "bunsho", DecisionDeny, true, "device_revoked"))
	add(acc("2026-11-21 11:00", "r3", "suzuki", "pc-2", "3B", "zaimu", DecisionDeny, true, "zone_not_allowed"))
	add(acc("2026-12-01 09:40", "r7", "tanaka", "pc-1", "2", "bunsho", DecisionAllow, true)) // outside the period
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg.Dir
}

func TestQuery(t *testing.T) {
	dir := reportTrail(t)
	ids := func(f Filter) []string {
		t.Helper()
		recs, bad, err := QueryAll(dir, f)
		if err != nil || bad != 0 {
			t.Fatal(err, bad)
		}
		var out []string
		for _, r := range recs {
			out = append(out, r.RequestID)
		}
		return out
	}
	no := false
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"user", Filter{User: "tanaka"}, []string{"r1", "r1", "r2", "r7"}},
		{"shadow", Filter{Enforced: &no, Event: EventAccess}, []string{"r4"}},
		{"class and decision", Filter{Class: "3B", Decision: DecisionDeny}, []string{"r3"}},
		{"since only", Filter{Since: jst("2026-11-21 00:00"), Event: EventAccess}, []string{"r3", "r7"}},
		{"device", Filter{Device: "pc-9"}, []string{"r6"}},
		{"request id", Filter{RequestID: "r1"}, []string{"r1", "r1"}},
		{"period", Filter{Since: jst("2026-11-17 00:00"), Until: jst("2026-11-18 00:00"), Event: EventAccess}, []string{"r4", "r6"}},
		{"limit", Filter{User: "tanaka", Limit: 2}, []string{"r1", "r1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ids(tc.f)); diff != "" {
				t.Fatalf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestQueryReportsUnreadableLines(t *testing.T) {
	dir := reportTrail(t)
	names, _ := listFiles(dir)
	f, _ := os.OpenFile(filepath.Join(dir, names[0]), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("garbage\n")
	f.Close()
	var lineErr *LineError
	n := 0
	for r, err := range Query(dir, Filter{User: "tanaka"}) {
		if errors.As(err, &lineErr) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		n += len(r.User) / len(r.User)
	}
	if lineErr == nil || lineErr.Line == 0 || n != 4 {
		t.Fatalf("lineErr=%v matches=%d", lineErr, n)
	}
}

func TestCSVHasBOM(t *testing.T) {
	dir := reportTrail(t)
	recs, _, _ := QueryAll(dir, Filter{User: "tanaka"})
	var buf bytes.Buffer
	cw, err := NewCSVWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	cw.Write(RecordColumns)
	for _, r := range recs {
		cw.Write(RecordRow(r, JST))
	}
	cw.Flush()
	if !bytes.HasPrefix(buf.Bytes(), []byte{0xEF, 0xBB, 0xBF}) {
		t.Fatal("no UTF-8 BOM")
	}
	rows, err := csv.NewReader(bytes.NewReader(buf.Bytes()[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 || rows[1][4] != "tanaka" || !strings.HasSuffix(rows[1][1], "+09:00") {
		t.Fatalf("rows: %q", rows)
	}
}

func TestBuildReport(t *testing.T) {
	dir := reportTrail(t)
	rep, err := BuildReport(dir, ReportOptions{Since: jst("2026-11-16 00:00"), Until: jst("2026-11-23 00:00")})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 5 || rep.Total.Allow != 2 || rep.Total.Deny != 3 {
		t.Fatalf("requests=%d total=%+v", rep.Requests, rep.Total)
	}
	classes := map[string]Counts{}
	for _, c := range rep.ByClass {
		classes[c.Key] = c
	}
	if c := classes["3B"]; c.Allow != 1 || c.Deny != 1 || c.Total != 2 {
		t.Fatalf("3B: %+v", c)
	}
	if h := rep.ByHour[10]; h.Allow != 1 {
		t.Fatalf("hour 10 JST: %+v", h)
	}
	if diff := cmp.Diff([]KeyCount{{"device_revoked", 1}, {"zone_not_allowed", 1}}, rep.DenyReasons); diff != "" {
		t.Fatalf("deny reasons (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff([]KeyCount{{"bunsho", 1}}, rep.ShadowWouldDeny); diff != "" {
		t.Fatalf("shadow (-want +got)\n%s", diff)
	}
	var off []string
	for _, e := range rep.OffHours {
		off = append(off, e.RequestID)
	}
	slices.Sort(off)
	if diff := cmp.Diff([]string{"r2", "r3"}, off); diff != "" {
		t.Fatalf("off hours (-want +got)\n%s", diff)
	}
	var revoked []string
	for _, e := range rep.RevokedTried {
		revoked = append(revoked, e.User+e.Device)
	}
	if diff := cmp.Diff([]string{"yamada", "pc-9"}, revoked); diff != "" {
		t.Fatalf("revoked tried (-want +got)\n%s", diff)
	}

	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# 監査レポート / Audit report", "| 3B | 1 | 1 | 0 | 0 | 2 |", "zone_not_allowed", "Not computed: needs the user store"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	rep.SetStaffWithoutPasskey([]string{"watanabe", "ito"})
	var html, csvOut bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), "<li>ito</li>") || !strings.Contains(html.String(), "zone_not_allowed") {
		t.Errorf("html:\n%s", html.String())
	}
	if err := rep.WriteCSV(&csvOut); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(csvOut.Bytes(), []byte(UTF8BOM)) || !strings.Contains(csvOut.String(), "staff_without_passkey,ito") {
		t.Errorf("csv:\n%s", csvOut.String())
	}
}

func TestReportTimeline(t *testing.T) {
	dir := reportTrail(t)
	rep, err := BuildReport(dir, ReportOptions{Since: jst("2026-11-16 00:00"), Until: jst("2026-11-23 00:00"), User: "tanaka"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Timeline) != 3 || rep.Requests != 2 {
		t.Fatalf("timeline=%d requests=%d", len(rep.Timeline), rep.Requests)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	if !strings.Contains(md.String(), "時系列 / Incident timeline") {
		t.Fatal("no timeline section")
	}
}

func TestOfficeHours(t *testing.T) {
	o := DefaultOfficeHours()
	o.Holidays = map[string]bool{"2026-11-23": true} // 勤労感謝の日
	for at, want := range map[string]bool{
		"2026-11-16 08:29": false, "2026-11-16 08:30": true, "2026-11-16 18:14": true, "2026-11-16 18:15": false,
		"2026-11-21 10:00": false, "2026-11-23 10:00": false, "2026-11-24 10:00": true,
	} {
		if got := o.Within(jst(at)); got != want {
			t.Errorf("%s: Within = %v", at, got)
		}
	}
}
