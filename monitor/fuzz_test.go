package monitor

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
)

// FuzzProcess runs every rule over records whose fields come from requests
// (path, user, device, address, reasons): no input may panic, and Recent
// stays within its bound.
func FuzzProcess(f *testing.F) {
	f.Add("access", "suzuki", "PC-1", "10.1.0.1", "3A", "/residents/1?x=1", "allow", "", int64(0))
	f.Add("authn", "", "", "203.0.113.1", "", "", "deny", "counter_regression", int64(-3600))
	f.Add("admin", "admin", "", "", "3A", "/.sekisho/admin", "allow", "revoke_user", int64(86400*400))
	f.Add("system", "", "", "", "", "", "", audit.ActionWriteFailed, int64(1))
	f.Add("access", "\x00", "\xff", "::1", "3B", "/%00", "error", "user_disabled", int64(-1<<40))
	f.Fuzz(func(t *testing.T, event, user, device, ip, class, path, decision, action string, offset int64) {
		m, err := New(config.Monitor{LearnPeriod: time.Nanosecond}, WithClock(func() time.Time { return workday }), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		if err != nil {
			t.Fatal(err)
		}
		at := workday.Add(time.Duration(offset) * time.Second)
		for i := range 3 {
			r := &audit.Record{Time: at.Add(time.Duration(i) * time.Second), Event: event, User: user, Device: device, IP: ip,
				Zone: ip, Route: path, Class: class, Path: path, Decision: decision, Enforced: true, Action: action,
				Target: user, Reasons: []string{action}}
			m.process(r, false)
		}
		m.sweep(workday.Add(48 * time.Hour))
		if n := len(m.Recent(0)); n > recentSize {
			t.Fatalf("Recent holds %d alerts", n)
		}
	})
}
