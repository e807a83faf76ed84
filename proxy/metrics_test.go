package proxy

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sekisho/sekisho/reqctx"
)

// The cached series must count exactly what the vectors would.
func TestMetricsSeriesCache(t *testing.T) {
	m := NewMetrics(nil)
	now := time.Unix(100, 0)
	for _, c := range []struct {
		route string
		code  int
	}{{"web", 200}, {"web", 200}, {"web", 404}, {"", 400}, {"api", 200}} {
		m.observe(&reqctx.Info{Route: c.route, Received: now.Add(-time.Second)}, &recordingWriter{code: c.code}, now)
	}
	for _, r := range []string{"allow", "allow", "deny", "login"} {
		m.decision(r)
	}
	for _, c := range []struct {
		route, code string
		want        float64
	}{{"web", "200", 2}, {"web", "404", 1}, {"-", "400", 1}, {"api", "200", 1}, {"api", "404", 0}} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.route, c.code)); got != c.want {
			t.Errorf("sekisho_requests_total{route=%s,code=%s} = %v, want %v", c.route, c.code, got, c.want)
		}
	}
	for r, want := range map[string]float64{"allow": 2, "deny": 1, "login": 1, "stepup": 0} {
		if got := testutil.ToFloat64(m.decisions.WithLabelValues(r)); got != want {
			t.Errorf("sekisho_decisions_total{result=%s} = %v, want %v", r, got, want)
		}
	}
	if got := testutil.CollectAndCount(m.latency); got != 3 {
		t.Errorf("latency series = %d, want 3 (web, -, api)", got)
	}
}
