package policy

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho/config"
)

// sampleConfig mirrors profiles/example.yaml, built in Go so that the
// engine is tested without the YAML loader.
func sampleConfig(policyFile string) *config.Config {
	pfx := func(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }
	return &config.Config{
		Session: config.Session{Lifetime: 10 * time.Hour, Idle: 30 * time.Minute},
		Zones: config.Zones{
			{Name: "chonai", Prefixes: pfx("10.1.0.0/16")},
			{Name: "telework", Prefixes: pfx("10.200.0.0/16")},
			{Name: "mynumber", Prefixes: pfx("10.9.0.0/16")},
		},
		Classes: map[string]config.Class{
			"3A": {Label: "機密性3A", MaxAuthAge: 15 * time.Minute, Require: []string{"passkey_uv", "device_cert", "registered_device"}, Audit: "sync", Zones: []string{"chonai", "mynumber"}},
			"3B": {Label: "機密性3B", MaxAuthAge: time.Hour, Require: []string{"passkey_uv", "device_cert"}, Audit: "sync", Zones: []string{"chonai", "mynumber"}},
			"3C": {Label: "機密性3C", MaxAuthAge: 4 * time.Hour, Require: []string{"passkey", "device_cert"}},
			"2":  {Label: "機密性2", MaxAuthAge: 10 * time.Hour, Require: []string{"passkey"}},
			"1":  {Label: "機密性1"},
		},
		Routes: []config.Route{
			{Name: "groupware", Host: "gw.gw.example.lg.jp", Segment: "lgwan", Class: "2"},
			{Name: "zaimu", Host: "zaimu.gw.example.lg.jp", Segment: "lgwan", Class: "2", Paths: []config.PathRule{
				{Prefix: "/export", Class: "3B", Action: "export"},
				{Prefix: "/admin", Class: "3A", Action: "admin"},
			}},
			{Name: "jinji", Host: "jinji.gw.example.lg.jp", Segment: "lgwan", Class: "3B", Paths: []config.PathRule{
				{Prefix: "/admin", Class: "3A", Action: "admin"},
			}},
			{Name: "bunsho", Host: "bunsho.gw.example.lg.jp", Segment: "lgwan", Class: "3C"},
			{Name: "juki", Host: "juki.gw.example.lg.jp", Segment: "mynumber", Class: "3B"},
			{Name: "eltax", Host: "eltax.gw.example.lg.jp", Segment: "internet", Class: "2"},
			{Name: "webmail", Host: "mail.gw.example.lg.jp", Segment: "internet", Class: "2"},
			{Name: "portal", Host: "www.gw.example.lg.jp", Segment: "internet", Class: "1", Public: true},
			{Name: "pilot", Host: "pilot.gw.example.lg.jp", Segment: "lgwan", Class: "2", Mode: "shadow"},
		},
		Policy: config.Policy{Model: "builtin", File: policyFile, Profile: "beta-prime"},
	}
}

// writePolicy writes text to a policy.csv in a fresh directory.
func writePolicy(t testing.TB, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.csv")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newEngine loads text with the sample configuration.
func newEngine(t testing.TB, text string, opts ...Option) (*Engine, *config.Config) {
	t.Helper()
	cfg := sampleConfig(writePolicy(t, text))
	e, err := New(cfg, append([]Option{WithLogger(discardLogger())}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e, cfg
}

func profileText(t testing.TB, name string) string {
	t.Helper()
	b, err := Profile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// 2026-04-01 is a Wednesday.
var wedMorning = time.Date(2026, 4, 1, 10, 0, 0, 0, time.FixedZone("JST", 9*3600))

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
