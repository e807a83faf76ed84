package policy

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const testPolicy = `# test policy
condition, chonai_only, zone=chonai
condition, fresh_uv,    amr=hwk+uv max_auth_age=1h
condition, night_shift, hours=22:00-06:00
condition, weekdays,    days=mon-fri holiday=no
holiday, 2026-04-29, 昭和の日
group, alice, role:zaimu
group, role:zaimu_lead, role:zaimu
allow,  role:zaimu,  route:zaimu, read|write, chonai_only
deny,   mallory,     *,           *
stepup, role:zaimu,  route:zaimu, export,     chonai_only & fresh_uv
allow,  *,           class:2,     read
allow,  role:guard,  route:groupware, write,  night_shift
allow,  dept:総務課, route:groupware, write,  weekdays
allow,  *,           route:jinji, read
`

// req builds a strong, fresh request from the office at wedMorning.
func req(mod func(r *Request)) *Request {
	r := &Request{
		User: "alice", Authenticated: true,
		Route: "zaimu", Class: "2", Segment: "lgwan", Action: "read", Mode: "enforce",
		Zone: "chonai", AMR: []string{"hwk", "uv"}, AuthTime: wedMorning.Add(-5 * time.Minute),
		Device: "pc-1", DeviceRegistered: true, DeviceOwner: "alice",
		Time: wedMorning, Method: "GET", Path: "/",
	}
	if mod != nil {
		mod(r)
	}
	return r
}

func TestDecide(t *testing.T) {
	e, _ := newEngine(t, testPolicy)
	tests := []struct {
		name string
		req  *Request
		want Decision
	}{
		{"allow by inherited role", req(nil),
			Decision{Effect: Allow, Rule: "policy.csv:9", Enforced: true}},
		{"role from the store, prefix optional", req(func(r *Request) { r.User = "bob"; r.Roles = []string{"zaimu_lead"}; r.Action = "write" }),
			Decision{Effect: Allow, Rule: "policy.csv:9", Enforced: true}},
		{"deny overrides allow", req(func(r *Request) { r.User = "mallory"; r.Roles = []string{"zaimu"} }),
			Decision{Effect: Deny, Rule: "policy.csv:10", Reasons: []Reason{ReasonExplicitDeny}, Enforced: true}},
		{"default deny: no rule for this action", req(func(r *Request) { r.Action = "admin"; r.Class = "3A" }),
			Decision{Effect: Deny, Rule: "default-deny", Reasons: []Reason{ReasonNoMatchingRule}, Enforced: true, AuditSync: true}},
		{"default deny says which condition failed", req(func(r *Request) { r.Zone = "telework"; r.Action = "write" }),
			Decision{Effect: Deny, Rule: "default-deny", Reasons: []Reason{ReasonZoneNotAllowed}, Enforced: true}},
		{"stepup rule met: allow, class 3B requirements met", req(func(r *Request) { r.Action = "export"; r.Class = "3B" }),
			Decision{Effect: Allow, Rule: "policy.csv:11", Enforced: true, AuditSync: true}},
		{"stepup rule: UV missing", req(func(r *Request) { r.Action = "export"; r.Class = "3B"; r.AMR = []string{"hwk"} }),
			Decision{Effect: StepUp, Rule: "policy.csv:11", Reasons: []Reason{ReasonStepUpRequired, ReasonUVRequired}, Enforced: true, AuditSync: true}},
		{"stepup rule: auth too old", req(func(r *Request) { r.Action = "export"; r.Class = "3B"; r.AuthTime = wedMorning.Add(-2 * time.Hour) }),
			Decision{Effect: StepUp, Rule: "policy.csv:11", Reasons: []Reason{ReasonStepUpRequired, ReasonAuthTooOld}, Enforced: true, AuditSync: true}},
		{"stepup rule gate failed: zone is not fixable by re-auth", req(func(r *Request) { r.Action = "export"; r.Class = "3B"; r.Zone = "telework" }),
			Decision{Effect: Deny, Rule: "default-deny", Reasons: []Reason{ReasonZoneNotAllowed}, Enforced: true, AuditSync: true}},
		// A permissive rule ("allow * jinji read") never weakens class 3B.
		{"class beats permissive rule: zone", req(func(r *Request) { r.Route = "jinji"; r.Class = "3B"; r.Zone = "telework" }),
			Decision{Effect: Deny, Rule: "class:3B", Reasons: []Reason{ReasonZoneNotAllowed}, Enforced: true, AuditSync: true}},
		{"class beats permissive rule: device cert", req(func(r *Request) { r.Route = "jinji"; r.Class = "3B"; r.Device = "" }),
			Decision{Effect: Deny, Rule: "class:3B", Reasons: []Reason{ReasonDeviceCertRequired}, Enforced: true, AuditSync: true}},
		{"class beats permissive rule: UV → step-up", req(func(r *Request) { r.Route = "jinji"; r.Class = "3B"; r.AMR = []string{"hwk"} }),
			Decision{Effect: StepUp, Rule: "class:3B", Reasons: []Reason{ReasonStepUpRequired, ReasonUVRequired}, Enforced: true, AuditSync: true}},
		{"class beats permissive rule: auth age → step-up", req(func(r *Request) { r.Route = "jinji"; r.Class = "3B"; r.AuthTime = wedMorning.Add(-61 * time.Minute) }),
			Decision{Effect: StepUp, Rule: "class:3B", Reasons: []Reason{ReasonStepUpRequired, ReasonAuthTooOld}, Enforced: true, AuditSync: true}},
		{"class 3A: unregistered device", req(func(r *Request) { r.Route = "jinji"; r.Class = "3A"; r.DeviceRegistered = false }),
			Decision{Effect: Deny, Rule: "class:3A", Reasons: []Reason{ReasonDeviceNotRegistered}, Enforced: true, AuditSync: true}},
		{"class deny beats class step-up", req(func(r *Request) { r.Route = "jinji"; r.Class = "3B"; r.Device = ""; r.AMR = nil }),
			Decision{Effect: Deny, Rule: "class:3B", Reasons: []Reason{ReasonDeviceCertRequired}, Enforced: true, AuditSync: true}},
		{"unknown class fails closed", req(func(r *Request) { r.Route = "jinji"; r.Class = "9Z" }),
			Decision{Effect: Deny, Rule: "class:9Z", Reasons: []Reason{ReasonUnknownClass}, Enforced: true}},
		{"not authenticated", req(func(r *Request) { r.Authenticated = false; r.User = ""; r.AMR = nil }),
			Decision{Effect: Deny, Rule: "default-deny", Reasons: []Reason{ReasonNotAuthenticated}, Enforced: true}},
		{"shadow mode decides but does not enforce", req(func(r *Request) { r.Mode = "shadow"; r.Zone = "external"; r.Action = "write" }),
			Decision{Effect: Deny, Rule: "default-deny", Reasons: []Reason{ReasonZoneNotAllowed}, Enforced: false}},
		{"shadow allow", req(func(r *Request) { r.Mode = "shadow" }),
			Decision{Effect: Allow, Rule: "policy.csv:9", Enforced: false}},
		{"department subject on a weekday", req(func(r *Request) { r.User = "u1"; r.Department = "総務課"; r.Route = "groupware"; r.Action = "write" }),
			Decision{Effect: Allow, Rule: "policy.csv:14", Enforced: true}},
		{"department subject on a holiday", req(func(r *Request) {
			r.User = "u1"
			r.Department = "総務課"
			r.Route = "groupware"
			r.Action = "write"
			r.Time = time.Date(2026, 4, 29, 10, 0, 0, 0, tokyo(t))
			r.AuthTime = r.Time
		}), Decision{Effect: Deny, Rule: "default-deny", Reasons: []Reason{ReasonOutsideHours}, Enforced: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.Decide(tt.req)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decide mismatch (-want +got):\n%s", diff)
			}
			// The cached answer is the same.
			if diff := cmp.Diff(got, e.Decide(tt.req)); diff != "" {
				t.Errorf("cached Decide differs (-first +second):\n%s", diff)
			}
			// Explain agrees with Decide.
			if diff := cmp.Diff(got, e.Explain(tt.req).Decision); diff != "" {
				t.Errorf("Explain differs from Decide (-decide +explain):\n%s", diff)
			}
		})
	}
}

func tokyo(t testing.TB) *time.Location {
	loc, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestOfficeHoursAcrossMidnight checks a 22:00-06:00 range in Asia/Tokyo,
// with request times given in other zones.
func TestOfficeHoursAcrossMidnight(t *testing.T) {
	e, _ := newEngine(t, testPolicy)
	jst := tokyo(t)
	guard := func(at time.Time) *Request {
		return req(func(r *Request) {
			r.User, r.Roles, r.Route, r.Action = "g1", []string{"guard"}, "groupware", "write"
			r.Time, r.AuthTime = at, at
		})
	}
	tests := []struct {
		at   time.Time
		want Effect
	}{
		{time.Date(2026, 4, 1, 21, 59, 0, 0, jst), Deny},
		{time.Date(2026, 4, 1, 22, 0, 0, 0, jst), Allow},
		{time.Date(2026, 4, 1, 23, 59, 0, 0, jst), Allow},
		{time.Date(2026, 4, 2, 0, 0, 0, 0, jst), Allow},
		{time.Date(2026, 4, 2, 5, 59, 0, 0, jst), Allow},
		{time.Date(2026, 4, 2, 6, 0, 0, 0, jst), Deny},
		// 13:30 UTC is 22:30 in Tokyo; 21:00 UTC is 06:00 the next day.
		{time.Date(2026, 4, 1, 13, 30, 0, 0, time.UTC), Allow},
		{time.Date(2026, 4, 1, 21, 0, 0, 0, time.UTC), Deny},
		// 09:00 in New York (EDT) is 22:00 in Tokyo.
		{time.Date(2026, 4, 1, 9, 0, 0, 0, mustLoc(t, "America/New_York")), Allow},
	}
	for _, tt := range tests {
		d := e.Decide(guard(tt.at))
		if d.Effect != tt.want {
			t.Errorf("at %s: got %s (%s %v), want %s", tt.at.Format(time.RFC3339), d.Effect, d.Rule, d.Reasons, tt.want)
		}
		if tt.want == Deny && !cmp.Equal(d.Reasons, []Reason{ReasonOutsideHours}) {
			t.Errorf("at %s: reasons %v, want [outside_hours]", tt.at.Format(time.RFC3339), d.Reasons)
		}
	}

	// The same wall-clock policy read in UTC instead.
	cfg := sampleConfig(writePolicy(t, testPolicy))
	cfg.Policy.Timezone = "UTC"
	eu, err := New(cfg, WithLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if d := eu.Decide(guard(time.Date(2026, 4, 1, 13, 30, 0, 0, time.UTC))); d.Effect != Deny {
		t.Errorf("UTC policy at 13:30 UTC: got %s, want deny", d.Effect)
	}
	if d := eu.Decide(guard(time.Date(2026, 4, 1, 23, 30, 0, 0, time.UTC))); d.Effect != Allow {
		t.Errorf("UTC policy at 23:30 UTC: got %s, want allow", d.Effect)
	}
}

func mustLoc(t testing.TB, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestCacheRespectsTime: a cached allow must not outlive the authentication
// age or the office-hours minute it was computed in.
func TestCacheRespectsTime(t *testing.T) {
	e, _ := newEngine(t, testPolicy)
	auth := wedMorning
	r := req(func(r *Request) {
		r.Route = "jinji"
		r.Class = "3B"
		r.AuthTime = auth
		r.Time = auth.Add(59 * time.Minute)
	})
	if d := e.Decide(r); d.Effect != Allow {
		t.Fatalf("at 59m: %s %v, want allow", d.Effect, d.Reasons)
	}
	r.Time = auth.Add(time.Hour + time.Second)
	if d := e.Decide(r); d.Effect != StepUp {
		t.Fatalf("at 1h0m1s: %s, want stepup (stale cache?)", d.Effect)
	}
	g := req(func(r *Request) {
		r.User, r.Roles, r.Route, r.Action = "g1", []string{"guard"}, "groupware", "write"
		r.Time = time.Date(2026, 4, 1, 21, 59, 30, 0, tokyo(t))
		r.AuthTime = r.Time
	})
	if d := e.Decide(g); d.Effect != Deny {
		t.Fatalf("21:59:30: %s, want deny", d.Effect)
	}
	g.Time = g.Time.Add(31 * time.Second)
	if d := e.Decide(g); d.Effect != Allow {
		t.Fatalf("22:00:01: %s, want allow (stale cache?)", d.Effect)
	}
}

func TestReload(t *testing.T) {
	reg := prometheus.NewRegistry()
	e, cfg := newEngine(t, testPolicy, WithRegisterer(reg))
	r := req(nil)
	if d := e.Decide(r); d.Effect != Allow {
		t.Fatalf("before: %s", d.Effect)
	}
	v1 := e.Version()

	// A bad file keeps the old policy and says where it is wrong.
	bad := testPolicy + "allow, role:zaimu, route:nosuch, read\nallw, x, *, read\n"
	if err := os.WriteFile(cfg.Policy.File, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	err := e.Reload()
	if err == nil {
		t.Fatal("Reload of a bad file succeeded")
	}
	if !strings.Contains(err.Error(), "policy.csv:17:") {
		t.Errorf("error does not name file:line: %v", err)
	}
	if e.Version() != v1 {
		t.Errorf("version changed after a failed reload")
	}
	if d := e.Decide(r); d.Effect != Allow {
		t.Errorf("after failed reload: %s, want the old policy's allow", d.Effect)
	}
	if got := testutil.ToFloat64(e.reloads.WithLabelValues("error")); got != 1 {
		t.Errorf("reload errors = %v, want 1", got)
	}

	// A good file replaces it, and the cache with it.
	if err := os.WriteFile(cfg.Policy.File, []byte(strings.Replace(testPolicy, "deny,   mallory", "deny,   alice", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if e.Version() == v1 {
		t.Error("version unchanged after a reload")
	}
	if d := e.Decide(r); d.Effect != Deny || d.Rule != "policy.csv:10" {
		t.Errorf("after reload: %s %s, want deny by policy.csv:10", d.Effect, d.Rule)
	}
	if got := testutil.ToFloat64(e.reloads.WithLabelValues("ok")); got != 1 {
		t.Errorf("reload ok = %v, want 1", got)
	}
}

// TestConcurrentReload decides from many goroutines while the policy is
// swapped back and forth; run with -race. Every decision must be one of
// the two policies' answers, never a mix.
func TestConcurrentReload(t *testing.T) {
	e, cfg := newEngine(t, testPolicy)
	other := strings.Replace(testPolicy, "deny,   mallory", "deny,   alice", 1)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				d := e.Decide(req(func(r *Request) { r.AuthTime = r.AuthTime.Add(time.Duration(i%50) * time.Second) }))
				ok := (d.Effect == Allow && d.Rule == "policy.csv:9") || (d.Effect == Deny && d.Rule == "policy.csv:10")
				if !ok {
					errs <- errors.New("unexpected decision " + d.Effect.String() + " " + d.Rule)
					return
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		text := testPolicy
		if i%2 == 0 {
			text = other
		}
		if err := os.WriteFile(cfg.Policy.File, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestReasonMessages(t *testing.T) {
	for _, r := range Reasons() {
		ja, en := r.Message("ja"), r.Message("en")
		if ja == "" || en == "" || ja == en || ja == "アクセスできません" {
			t.Errorf("%s: missing message (ja %q, en %q)", r, ja, en)
		}
	}
	if got := ReasonZoneNotAllowed.Message("ja"); got != "庁内ネットワークから接続してください" {
		t.Errorf("zone message = %q", got)
	}
	if got := ReasonDeviceNotRegistered.Message(""); got != "この端末は登録されていません" {
		t.Errorf("device message = %q", got)
	}
}

func TestDecisionMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e, _ := newEngine(t, testPolicy, WithRegisterer(reg))
	r := req(nil)
	e.Decide(r)
	e.Decide(r)
	e.Decide(req(func(r *Request) { r.User = "mallory" }))
	for _, c := range []struct {
		effect, cache string
		want          float64
	}{{"allow", "miss", 1}, {"allow", "hit", 1}, {"deny", "miss", 1}, {"stepup", "miss", 0}} {
		if got := testutil.ToFloat64(e.decisions.WithLabelValues(c.effect, c.cache)); got != c.want {
			t.Errorf("decisions_total{effect=%q,cache=%q} = %v, want %v", c.effect, c.cache, got, c.want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "sekisho_policy_decisions_total", "sekisho_policy_reloads_total", "sekisho_policy_loaded_timestamp_seconds"); err != nil || n < 3 {
		t.Errorf("registered metrics: %d series, %v", n, err)
	}
}

// TestCacheKeyDistinct: requests that differ in any decision input, or
// only in where one field ends and the next begins, get different cache
// keys; requests that differ only in what the decision ignores share one.
func TestCacheKeyDistinct(t *testing.T) {
	base := Request{User: "alice", Roles: []string{"zaimu"}, Route: "zaimu", Class: "2", Zone: "chonai",
		AMR: []string{"hwk", "uv"}, Authenticated: true, Method: "GET", Path: "/a"}
	variants := map[string]func(r *Request){
		"user":        func(r *Request) { r.User = "alicf" },
		"user/roles":  func(r *Request) { r.User, r.Roles = "alicez", []string{"aimu"} },
		"roles split": func(r *Request) { r.Roles = []string{"zai", "mu"} },
		"roles/dept":  func(r *Request) { r.Roles, r.Department = nil, "zaimu" },
		"route/class": func(r *Request) { r.Route, r.Class = "zaimu2", "" },
		"amr split":   func(r *Request) { r.AMR = []string{"hwkuv"} },
		"amr order":   func(r *Request) { r.AMR = []string{"uv", "hwk"} },
		"zone":        func(r *Request) { r.Zone = "telework" },
		"segment":     func(r *Request) { r.Segment = "lgwan" },
		"action":      func(r *Request) { r.Action = "write" },
		"mode":        func(r *Request) { r.Mode = "x" },
		"device":      func(r *Request) { r.Device = "d1" },
		"registered":  func(r *Request) { r.DeviceRegistered = true },
		"anonymous":   func(r *Request) { r.Authenticated = false },
		"auth time":   func(r *Request) { r.AuthTime = wedMorning },
		"method":      func(r *Request) { r.Method = "HEAD" },
		"method/path": func(r *Request) { r.Method, r.Path = "GET/", "a" },
		"long":        func(r *Request) { r.Path = "/" + strings.Repeat("x", 300) },
	}
	key := func(r *Request) string { return string(appendCacheKey(nil, r, true)) }
	seen := map[string]string{key(&base): "base"}
	for name, change := range variants {
		r := base
		change(&r)
		k := key(&r)
		if other, ok := seen[k]; ok {
			t.Errorf("%s and %s share a cache key %q", name, other, k)
		}
		seen[k] = name
	}
	same := base
	same.Time = wedMorning // time is the entry's window, not part of the key
	if key(&same) != key(&base) {
		t.Error("time changed the cache key")
	}
	if a, b := string(appendCacheKey(nil, &base, false)), string(appendCacheKey(nil, &Request{User: "alice", Roles: []string{"zaimu"}, Route: "zaimu", Class: "2", Zone: "chonai", AMR: []string{"hwk", "uv"}, Authenticated: true, Method: "POST", Path: "/b"}, false)); a != b {
		t.Error("method and path changed the key of a policy that does not test them")
	}
}
