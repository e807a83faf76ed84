// Package e2e runs the whole product — the demo's configuration, sample
// apps, SQLite store, audit trail and gateway — and drives it with a real
// browser (headless Chromium over CDP with a virtual WebAuthn
// authenticator), as a member of staff would use it.
package e2e

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/internal/app"
	"github.com/sekisho/sekisho/internal/demo"
	"github.com/sekisho/sekisho/store"
)

const chromiumPath = "/usr/bin/chromium"

// needChromium skips outside CI when Chromium is missing, and fails in CI.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is missing: .ci/run must install chromium", chromiumPath)
		}
		t.Skipf("%s not installed; skipping the browser test outside CI", chromiumPath)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// outDir is where screenshots go: $SEKISHO_TEST_OUT, or testout/ at the
// repository root (ignored by git).
func outDir(t *testing.T) string {
	d := os.Getenv("SEKISHO_TEST_OUT")
	if d == "" {
		d = filepath.Join("..", "testout")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

type product struct {
	app     *app.App
	setup   *demo.Setup
	token   string
	port    int
	metrics int
}

// startProduct runs the demo in a temporary directory on free ports.
func startProduct(t *testing.T) *product {
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
	// Every answered keep-alive connection is parked (proxy/park.go), as
	// on a gateway holding server.park_idle_after connections, and plain
	// GETs take the fast path (proxy/front.go): the real browser's flows
	// run through both.
	cfg.Server.ParkIdleAfter = 1
	fastPath := true
	cfg.Server.FastPath = &fastPath
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.New(ctx, cfg, app.WithLogger(log))
	if err != nil {
		t.Fatalf("app.New: %v", err)
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
	return &product{app: a, setup: s, token: token, port: opts.HTTPPort, metrics: opts.MetricsPort}
}

func (p *product) url(host, path string) string {
	return "http://" + host + ":" + strconv.Itoa(p.port) + path
}

// browser starts headless Chromium with a virtual platform authenticator
// (internal transport, resident keys, user verification).
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "ja"),
		chromedp.Flag("accept-lang", "ja-JP,ja"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 800),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	ctx, tcancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(tcancel)
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	if _, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
			Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true,
			HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		},
	}); err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return ctx
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(outDir(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Error(err)
	}
	t.Logf("screenshot: %s", path)
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("reading %s: %v", sel, err)
	}
	return s
}

func TestBrowserEnrollLoginAndAccess(t *testing.T) {
	needChromium(t)
	p := startProduct(t)
	ctx := browser(t)

	// 1. Enrollment through the one-time URL.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(p.url("zaimu.gw.localhost", "/.sekisho/enroll?token="+p.token)),
		chromedp.WaitVisible(chromedp.CSS("#sekisho-enroll")),
	); err != nil {
		t.Fatalf("opening the enrollment page: %v", err)
	}
	screenshot(t, ctx, "01-enroll")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#sekisho-enroll"))); err != nil {
		t.Fatal(err)
	}
	if !poll(func() bool {
		creds, err := p.app.Store.ListCredentials(context.Background(), demo.DemoUser)
		return err == nil && len(creds) == 1
	}) {
		screenshot(t, ctx, "01-enroll-failed")
		t.Fatalf("no passkey was registered; page status: %q", text(t, ctx, "#sekisho-status"))
	}

	// 2. A protected system: login page, passkey, back to the system.
	// (The enrollment page may still be navigating on its own after
	// success; navigate retries once if that aborts ours.)
	if err := navigate(ctx, p.url("zaimu.gw.localhost", "/"), "#sekisho-login"); err != nil {
		t.Fatalf("expected the login page: %v", err)
	}
	screenshot(t, ctx, "02-login")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#sekisho-login")),
		chromedp.WaitVisible(chromedp.CSS("#welcome")),
	); err != nil {
		t.Fatalf("login did not reach the 財務会計 app: %v", err)
	}
	screenshot(t, ctx, "03-zaimu")
	if got := text(t, ctx, "#user"); got != demo.DemoUser {
		t.Errorf("the app saw user %q, want %q (verified from X-Sekisho-Assertion)", got, demo.DemoUser)
	}
	if got := text(t, ctx, "#class"); got != "2" {
		t.Errorf("class = %q, want 2", got)
	}
	if got := text(t, ctx, "#zone"); got != "chonai" {
		t.Errorf("zone = %q, want chonai", got)
	}

	// 3. 住民記録 (3B) needs a device certificate: over HTTP it is refused
	// with a Japanese page that says so.
	if err := chromedp.Do(ctx, chromedp.Navigate(p.url("juki.gw.localhost", "/"))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#sekisho-login"))); err == nil {
		// A new host needs its own session (host-only cookie): log in again.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#sekisho-login")),
			chromedp.WaitVisible(chromedp.CSS("#request-id"))); err != nil {
			t.Fatalf("login on juki: %v", err)
		}
	}
	screenshot(t, ctx, "04-juki-denied")
	body := text(t, ctx, "main")
	if !strings.Contains(body, "端末") {
		t.Errorf("the 3B deny page does not mention the device:\n%s", body)
	}

	// 4. The kill switch: revoking the user ends the session on the next request.
	r := &store.Revocation{Kind: store.RevokeUser, Subject: demo.DemoUser, At: time.Now().UTC(), By: "e2e", Reason: "test"}
	if err := p.app.Store.AddRevocation(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // replicas poll within a second
	if err := chromedp.Do(ctx,
		chromedp.Navigate(p.url("zaimu.gw.localhost", "/")),
		chromedp.WaitVisible(chromedp.CSS("#sekisho-login")),
	); err != nil {
		t.Fatalf("after revocation the session still worked: %v", err)
	}
	screenshot(t, ctx, "05-revoked")

	// The browser's keep-alive connections went through parking.
	if n := p.metric(t, "sekisho_connection_parks_total"); n < 1 {
		t.Errorf("sekisho_connection_parks_total = %v: the browser's connections were never parked", n)
	}
}

// metric reads one unlabelled metric from the metrics listener.
func (p *product) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(p.metrics) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// navigate opens url and waits for sel, retrying once when a navigation
// the page started itself aborts ours.
func navigate(ctx context.Context, url, sel string) error {
	var err error
	for i := 0; i < 3; i++ {
		if err = chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel))); err == nil || !strings.Contains(err.Error(), "ERR_ABORTED") {
			return err
		}
		time.Sleep(300 * time.Millisecond)
	}
	return err
}

// poll reports whether cond became true within 15 seconds.
func poll(cond func() bool) bool {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}
