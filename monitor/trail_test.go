package monitor

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
)

// TestAlertsInARealTrail wires the monitor as the gateway does: records
// appended to a real audit trail are observed, and alerts come back into
// the same trail through its Append, which stays verifiable.
func TestAlertsInARealTrail(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	trail, err := audit.Open(config.Audit{Dir: dir, Key: filepath.Join(dir, "audit.key")})
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, config.Monitor{}, workday, WithAlertSink(trail.Append))
	appendObserve := func(r *audit.Record) {
		if err := trail.AppendDurable(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		h.m.Observe(r) // the lead's call site: right after the append
	}
	for i := range 12 {
		appendObserve(access(workday.Add(time.Duration(i)*time.Second), "suzuki", "PC-1", "10.1.0.5", "chonai", "jinji", "3B", "/", "deny", "no_matching_rule"))
	}
	h.flush()
	keys := trail.PublicJWKS()
	if err := trail.Close(); err != nil {
		t.Fatal(err)
	}
	alerts, _, err := audit.QueryAll(dir, audit.Filter{Event: audit.EventAlert})
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 {
		for _, a := range alerts {
			t.Logf("%s %s %s", a.Action, a.Target, a.Detail)
		}
		t.Fatalf("trail holds %d alert records, want 1", len(alerts))
	}
	a := alerts[0]
	if a.Action != config.RuleDenialBurst || a.Target != "suzuki" || a.User != "suzuki" || a.RequestID == "" {
		t.Errorf("alert record = %+v", a)
	}
	var d Alert
	if err := json.Unmarshal([]byte(a.Detail), &d); err != nil || len(d.Evidence) != 10 || d.Summary == "" {
		t.Errorf("detail = %s (%v)", a.Detail, err)
	}
	res, err := audit.Verify(dir, keys)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Errorf("trail with alerts does not verify: %v", err)
	}
}
