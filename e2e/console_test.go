package e2e

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/internal/app"
	"github.com/sekisho/sekisho/internal/demo"
	"github.com/sekisho/sekisho/policy"
	"github.com/sekisho/sekisho/store"
)

// consolePolicy lets the demo's admin role into the console (class 3A,
// action admin) from 庁内 with a passkey and user verification within 15
// minutes.
const consolePolicy = `
condition, 15分以内UV, amr=hwk+uv max_auth_age=15m
allow, role:admin, route:admin, admin, 庁内 & 15分以内UV
`

// consoleProduct is the demo product, whose app mounts the console.
type consoleProduct struct {
	app   *app.App
	token string
	port  int
}

// startConsoleProduct runs the demo's configuration and policy. The
// browser talks plain HTTP on localhost and so presents no device
// certificate; class 3A is therefore configured here to need a passkey
// with user verification within 15 minutes but not a device certificate,
// and the console rule here does not ask for a registered device.
func startConsoleProduct(t *testing.T) *consoleProduct {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts := demo.Options{Dir: t.TempDir(), HTTPPort: freePort(t), HTTPSPort: freePort(t), MetricsPort: freePort(t)}
	s, err := demo.Prepare(opts)
	if err != nil {
		t.Fatalf("demo.Prepare: %v", err)
	}
	cfg, err := config.Load(s.ConfigPath)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	pf, err := os.OpenFile(policy.PolicyPath(cfg), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pf.WriteString(consolePolicy); err != nil {
		t.Fatal(err)
	}
	pf.Close()
	c3a := cfg.Classes["3A"]
	c3a.Require, c3a.MaxAuthAge, c3a.Zones = []string{"passkey_uv"}, 15*time.Minute, nil
	cfg.Classes["3A"] = c3a

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.New(ctx, cfg, app.WithLogger(log))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	if a.Console == nil {
		t.Fatal("the app does not mount the admin console")
	}
	if _, err := a.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	u := &store.User{ID: demo.DemoUser, DisplayName: demo.DemoUserName, Department: demo.DemoDept, Roles: demo.DemoRoles}
	if err := a.Store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	token, err := a.Authn.Invite(ctx, demo.DemoUser, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StartApps(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("gateway did not shut down within 10s")
		}
		a.Close()
	})
	return &consoleProduct{app: a, token: token, port: opts.HTTPPort}
}

func (p *consoleProduct) url(path string) string {
	return (&product{port: p.port}).url("zaimu.gw.localhost", path)
}

func TestBrowserConsole(t *testing.T) {
	needChromium(t)
	p := startConsoleProduct(t)
	ctx := browser(t)
	bg := context.Background()
	// A PC the admin will isolate.
	now := time.Now().UTC()
	if err := p.app.Store.UpsertDevice(bg, &store.Device{ID: "PC-ZAIMU-007", Owner: demo.DemoUser, Department: demo.DemoDept,
		Status: store.DeviceActive, Fingerprints: []string{"00"}, FirstSeen: now.Add(-48 * time.Hour), LastSeen: now}); err != nil {
		t.Fatal(err)
	}

	// 1. Register a passkey, then open the console: login, passkey, overview.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(p.url("/.sekisho/enroll?token="+p.token)),
		chromedp.WaitVisible(chromedp.CSS("#sekisho-enroll")),
		chromedp.Click(chromedp.CSS("#sekisho-enroll")),
	); err != nil {
		t.Fatalf("enrolling: %v", err)
	}
	if !poll(func() bool {
		creds, err := p.app.Store.ListCredentials(bg, demo.DemoUser)
		return err == nil && len(creds) == 1
	}) {
		t.Fatal("no passkey was registered")
	}
	// The enrollment page then moves on by itself; navigating before it
	// does would be aborted.
	if !poll(func() bool {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		return err == nil && !strings.Contains(loc, "/.sekisho/enroll")
	}) {
		t.Fatal("the enrollment page did not move on")
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(p.url("/.sekisho/admin/")),
		chromedp.WaitVisible(chromedp.CSS("#sekisho-login")),
		chromedp.Click(chromedp.CSS("#sekisho-login")),
		chromedp.WaitVisible(chromedp.CSS("#trail-status")),
	); err != nil {
		screenshot(t, ctx, "console-00-failed")
		t.Fatalf("signing in to the console: %v", err)
	}
	screenshot(t, ctx, "console-01-overview")
	if got := text(t, ctx, "#trail-status"); got != "改ざんなし" {
		t.Errorf("trail status %q; want 改ざんなし", got)
	}
	body := text(t, ctx, "main")
	for _, want := range []string{"概況", "パスキー登録率", "100.0%", "機密性分類別の判定"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg rect").length`)); err != nil || n == 0 {
		t.Errorf("overview draws no SVG bars (%d, %v)", n, err)
	}

	// 2. Audit search: the admin's own sign-in, found through the form.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(p.url("/.sekisho/admin/audit")),
		chromedp.WaitVisible(chromedp.CSS("form.filters")),
		chromedp.SetValue(chromedp.CSS(`input[name="user"]`), demo.DemoUser),
		chromedp.SetValue(chromedp.CSS(`select[name="event"]`), "authn"),
		chromedp.Click(chromedp.CSS(`form.filters button[type="submit"]`)),
	); err != nil {
		t.Fatalf("searching the audit trail: %v", err)
	}
	// The unfiltered page already lists records: wait for the search's own
	// page before looking (waiting for the list alone raced the navigation
	// and failed about 1 run in 4).
	if !poll(func() bool {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		return err == nil && strings.Contains(loc, "event=authn")
	}) {
		t.Fatal("the search did not navigate to its results")
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("ol.records details"))); err != nil {
		t.Fatalf("search results: %v", err)
	}
	screenshot(t, ctx, "console-02-search")
	if got := text(t, ctx, "#result-count"); !strings.Contains(got, "該当") || strings.Contains(got, "該当 0 件") {
		t.Errorf("result count %q; want the sign-in records", got)
	}
	if got := text(t, ctx, "ol.records"); !strings.Contains(got, "login") {
		t.Errorf("search results lack the login: %q", got)
	}

	// 3. Isolate a device through the kill switch: form, confirmation, done.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(p.url("/.sekisho/admin/devices")),
		chromedp.WaitVisible(chromedp.CSS("#devices")),
		chromedp.Click(chromedp.CSS(`a[href*="subject=PC-ZAIMU-007"]`)),
		chromedp.WaitVisible(chromedp.CSS(`textarea[name="reason"]`)),
		chromedp.SetValue(chromedp.CSS(`textarea[name="reason"]`), "CSIRT-2026-031 マルウェア検知"),
		chromedp.Click(chromedp.CSS(`form.killswitch button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#confirm")),
	); err != nil {
		t.Fatalf("kill switch, first step: %v", err)
	}
	screenshot(t, ctx, "console-03-confirm")
	if got := text(t, ctx, "#confirm"); !strings.Contains(got, "端末 PC-ZAIMU-007 を利用停止にし") || !strings.Contains(got, "CSIRT-2026-031") {
		t.Errorf("confirmation page does not repeat what will happen:\n%s", got)
	}
	if d, _ := p.app.Store.GetDevice(bg, "PC-ZAIMU-007"); d.Status != store.DeviceActive {
		t.Fatal("the device was isolated before confirmation")
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#execute")),
		chromedp.WaitVisible(chromedp.CSS("#revoked")),
	); err != nil {
		t.Fatalf("kill switch, second step: %v", err)
	}
	screenshot(t, ctx, "console-04-revoked")
	if d, _ := p.app.Store.GetDevice(bg, "PC-ZAIMU-007"); d.Status != store.DeviceRevoked || d.Reason != "CSIRT-2026-031 マルウェア検知" {
		t.Errorf("device after the kill switch: %+v", d)
	}
	var rec *audit.Record
	poll(func() bool {
		recs, _, _ := audit.QueryAll(p.app.Trail.Dir(), audit.Filter{Event: audit.EventAdmin})
		for _, r := range recs {
			if r.Action == "revoke_device" && r.Target == "PC-ZAIMU-007" && r.RequestID != "" {
				rec = r
				return true
			}
		}
		return false
	})
	if rec == nil || rec.User != demo.DemoUser || rec.Detail != "CSIRT-2026-031 マルウェア検知" {
		t.Errorf("admin audit record for the isolation: %+v", rec)
	}

	// 4. The device's timeline shows the isolation; print layout for CSIRT.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(p.url("/.sekisho/admin/timeline?device=PC-ZAIMU-007")),
		chromedp.WaitVisible(chromedp.CSS("#timeline")),
	); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "console-05-timeline")
	if got := text(t, ctx, "#timeline"); !strings.Contains(got, "revoke_device") {
		t.Errorf("timeline lacks the isolation:\n%s", got)
	}
	if got := text(t, ctx, "#tl-summary"); !strings.Contains(got, "利用停止") {
		t.Errorf("timeline summary does not show the device isolated:\n%s", got)
	}
}
