package policy

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/config"
)

// The quality bar (shared/DESIGN.md §6): with 2,000 users, 300 routes and
// 5 classes, a decision takes ≤ 5 µs median warm and ≤ 50 µs cold; with
// 100,000 policy lines ≤ 100 µs. Each benchmark reports its median as
// "median-ns"; run
//
//	go test -run '^$' -bench . -benchtime 20000x ./policy

const (
	benchUsers  = 2000
	benchRoutes = 300
	benchRoles  = 60
)

var benchClasses = []string{"1", "2", "3C", "3B", "3A"}

func benchConfig(policyFile string) *config.Config {
	cfg := sampleConfig(policyFile)
	cfg.Routes = nil
	for i := 0; i < benchRoutes; i++ {
		cfg.Routes = append(cfg.Routes, config.Route{
			Name: fmt.Sprintf("app%03d", i), Host: fmt.Sprintf("app%03d.gw.example.lg.jp", i),
			Segment: []string{"lgwan", "internet", "mynumber"}[i%3], Class: benchClasses[1+i%4],
		})
	}
	cfg.Classes["3A"] = config.Class{MaxAuthAge: 15 * time.Minute, Require: []string{"passkey_uv", "device_cert", "registered_device"}, Audit: "sync"}
	cfg.Classes["3B"] = config.Class{MaxAuthAge: time.Hour, Require: []string{"passkey_uv", "device_cert"}, Audit: "sync"}
	return cfg
}

// benchPolicy: every user in two roles and a department; per route an
// allow for two roles with conditions, a stepup for a third and a deny;
// plus extraPerUser direct grants per user (to reach 100,000 lines).
func benchPolicy(extraPerUser int) string {
	var b strings.Builder
	b.WriteString("condition, chonai, zone=chonai\ncondition, uv, amr=hwk+uv max_auth_age=1h\ncondition, hours, hours=07:00-22:00 days=mon-fri holiday=no\ncondition, mn, zone=mynumber\n")
	for i := 0; i < benchUsers; i++ {
		fmt.Fprintf(&b, "group, u%04d, role:r%02d\ngroup, u%04d, role:r%02d\n", i, i%benchRoles, i, (i*7+3)%benchRoles)
	}
	for r := 0; r < benchRoles/2; r++ {
		fmt.Fprintf(&b, "group, role:r%02d, role:r%02d\n", r, r+benchRoles/2)
	}
	for i := 0; i < benchRoutes; i++ {
		fmt.Fprintf(&b, "allow, role:r%02d|role:r%02d, route:app%03d, read|write, chonai & hours\n", i%benchRoles, (i+1)%benchRoles, i)
		fmt.Fprintf(&b, "stepup, role:r%02d, route:app%03d, export, chonai & uv\n", (i+2)%benchRoles, i)
		fmt.Fprintf(&b, "deny, *, route:app%03d, admin, !chonai\n", i)
	}
	b.WriteString("deny, *, segment:mynumber, *, !mn\nallow, *, class:2, read, chonai\n")
	for i := 0; i < benchUsers && extraPerUser > 0; i++ {
		for k := 0; k < extraPerUser; k++ {
			fmt.Fprintf(&b, "allow, u%04d, route:app%03d, read|export, chonai\n", i, (i*13+k*7)%benchRoutes)
		}
	}
	return b.String()
}

func benchEngine(b *testing.B, extraPerUser, cacheSize int) (*Engine, int) {
	b.Helper()
	text := benchPolicy(extraPerUser)
	p := filepath.Join(b.TempDir(), "policy.csv")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := benchConfig(p)
	cfg.Policy.CacheSize = cacheSize
	start := time.Now()
	e, err := New(cfg, WithLogger(discardLogger()))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d lines in %s", strings.Count(text, "\n"), time.Since(start).Round(time.Millisecond))
	return e, strings.Count(text, "\n")
}

// benchRequests are varied requests over users, routes and zones.
func benchRequests(n int) []*Request {
	rng := rand.New(rand.NewPCG(7, 9))
	out := make([]*Request, n)
	for i := range out {
		u := rng.IntN(benchUsers)
		rt := rng.IntN(benchRoutes)
		out[i] = &Request{
			User: fmt.Sprintf("u%04d", u), Roles: []string{fmt.Sprintf("r%02d", u%benchRoles)}, Department: fmt.Sprintf("d%02d", u%20),
			Authenticated: true, Route: fmt.Sprintf("app%03d", rt), Class: benchClasses[1+rt%4],
			Segment: []string{"lgwan", "internet", "mynumber"}[rt%3], Action: []string{"read", "write", "export", "admin"}[rng.IntN(4)],
			Mode: "enforce", Zone: []string{"chonai", "chonai", "telework", "mynumber"}[rng.IntN(4)],
			AMR: []string{"hwk", "uv"}, AuthTime: wedMorning.Add(-10 * time.Minute),
			Device: "pc", DeviceRegistered: true, DeviceOwner: fmt.Sprintf("u%04d", u),
			Time: wedMorning, Method: "GET", Path: "/",
		}
	}
	return out
}

// runMedian times each Decide and reports the median.
func runMedian(b *testing.B, e *Engine, reqs []*Request) {
	b.Helper()
	times := make([]time.Duration, 0, b.N)
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := reqs[i%len(reqs)]
		i++
		t0 := time.Now()
		e.Decide(r)
		times = append(times, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(times)
	if len(times) > 0 {
		b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "median-ns")
		b.ReportMetric(float64(times[len(times)*99/100].Nanoseconds()), "p99-ns")
	}
}

// BenchmarkDecideWarm: the cache holds the answers (a user's repeated
// requests to the same route).
func BenchmarkDecideWarm(b *testing.B) {
	e, _ := benchEngine(b, 0, 0)
	reqs := benchRequests(1000)
	for _, r := range reqs {
		e.Decide(r)
	}
	runMedian(b, e, reqs)
}

// BenchmarkDecideCold: no cache; every decision is computed.
func BenchmarkDecideCold(b *testing.B) {
	e, _ := benchEngine(b, 0, -1)
	runMedian(b, e, benchRequests(5000))
}

// BenchmarkDecideCold100k: 100,000 policy lines, no cache.
func BenchmarkDecideCold100k(b *testing.B) {
	// 4,936 base lines (2,000 users × 2 group lines, 900 route lines, …)
	// plus 48 direct grants per user.
	e, n := benchEngine(b, 48, -1)
	if n < 100000 {
		b.Fatalf("policy has %d lines, want ≥ 100,000", n)
	}
	runMedian(b, e, benchRequests(5000))
}
