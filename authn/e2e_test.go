package authn

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/reqctx"
	"github.com/sekisho/sekisho/store"
)

const chromiumPath = "/usr/bin/chromium"

// TestBrowserEnrollAndLogin drives headless Chromium with a CDP virtual
// authenticator (CTAP2, internal, resident keys, user verification) through
// the real pages and script: open the enrollment URL, register, open a
// protected page, get sent to the login page, sign in, and arrive at the
// protected page showing the user. The last screen is saved as
// e2e-protected.png in the test's artifact directory (go test -artifacts).
func TestBrowserEnrollAndLogin(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required in CI: %v", err)
		}
		t.Skipf("chromium not installed: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	base := fmt.Sprintf("http://localhost:%d", port)

	// http://localhost is a secure context: WebAuthn and Secure cookies work
	// without TLS, as in `sekisho demo`.
	cfg := &config.Config{}
	cfg.Server.Listen = ":8443"
	cfg.Server.HTTPListen = ln.Addr().String()
	cfg.WebAuthn.RPID = "localhost"
	cfg.WebAuthn.RPName = "テスト市 アクセスゲートウェイ"
	cfg.Routes = []config.Route{{Name: "app", Host: "localhost", Class: "2"}}

	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sm, err := session.New(cfg, st, session.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	events := &eventLog{}
	svc, err := New(cfg, st, sm, WithLogger(quietLogger()), WithEvents(events.add))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, &store.User{ID: "yamada", DisplayName: "山田 太郎", Department: "財務課", Roles: []string{"zaimu-user"}}); err != nil {
		t.Fatal(err)
	}
	token, err := svc.Invite(ctx, "yamada", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	enrollURL, err := EnrollURL(cfg, "", token)
	if err != nil {
		t.Fatal(err)
	}
	if want := base + PathEnroll + "?token=" + token; enrollURL != want {
		t.Fatalf("EnrollURL = %s, want %s", enrollURL, want)
	}

	mux := http.NewServeMux()
	mux.Handle("/.sekisho/", svc.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		id, err := svc.Identify(r)
		if err != nil {
			svc.RequireLogin(w, r)
			return
		}
		_ = svc.Refresh(w, r, id)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="ja"><head><title>財務会計</title></head><body>
<h1>財務会計システム</h1><p id="who">%s (%s) — %s</p><p id="amr">%s</p></body></html>`,
			html.EscapeString(id.DisplayName), html.EscapeString(id.User), html.EscapeString(id.Department), strings.Join(id.AMR, " "))
	})
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip, _ := netip.ParseAddrPort(r.RemoteAddr)
			info := &reqctx.Info{RequestID: "e2e", Received: time.Now(), IP: ip.Addr(), Zone: "chonai", Host: "localhost", Method: r.Method, Path: r.URL.Path}
			mux.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), info)))
		}),
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	profile := t.TempDir()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "ja"),
		chromedp.Flag("accept-lang", "ja"),
		chromedp.WindowSize(1024, 900),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	bctx, cancelTimeout := context.WithTimeout(bctx, 60*time.Second)
	defer cancelTimeout()

	if _, err := chromedp.Call(bctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	auth, err := chromedp.Call(bctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                webauthn.Ctap2versionCtap21,
			Transport:                   webauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}

	screenshot := func(name string) {
		buf, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Logf("screenshot %s: %v", name, err)
			return
		}
		path := filepath.Join(t.ArtifactDir(), name)
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Errorf("saving screenshot: %v", err)
			return
		}
		t.Logf("screenshot: %s", path)
	}
	// waitPath waits until the page's path and query start with prefix,
	// reporting the status line the page shows when it does not.
	waitPath := func(prefix string) {
		t.Helper()
		// Evaluate in a loop: a navigation under way makes one evaluation
		// fail, the next one reads the new page.
		deadline := time.Now().Add(20 * time.Second)
		for {
			loc, err := chromedp.Run(bctx, chromedp.Evaluate[string](`location.pathname + location.search`))
			if err == nil && strings.HasPrefix(loc, prefix) {
				return
			}
			if time.Now().After(deadline) {
				status, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`(document.getElementById('sekisho-status')||{}).textContent || ''`))
				screenshot("e2e-failure.png")
				t.Fatalf("waiting for %s: at %q (%v), page says %q", prefix, loc, err, status)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Enrollment.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(enrollURL),
		chromedp.WaitVisible(chromedp.ID("sekisho-enroll")),
	); err != nil {
		t.Fatalf("opening the enrollment page: %v", err)
	}
	who, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("sekisho-user")))
	if err != nil || !strings.Contains(who, "山田 太郎") {
		t.Fatalf("enrollment page names %q (%v)", who, err)
	}
	screenshot("e2e-enroll.png")
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("sekisho-enroll"))); err != nil {
		t.Fatalf("clicking enroll: %v", err)
	}
	waitPath(PathLogin + "?enrolled=1")
	creds, err := chromedp.Call(bctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: auth.AuthenticatorID})
	if err != nil || len(creds.Credentials) != 1 || !creds.Credentials[0].IsResidentCredential {
		t.Fatalf("virtual authenticator credentials: %+v, %v", creds, err)
	}

	// A protected page sends the browser to the login page and back.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/zaimu/ledger?year=2026"),
		chromedp.WaitVisible(chromedp.ID("sekisho-login")),
	); err != nil {
		t.Fatalf("opening the protected page: %v", err)
	}
	waitPath(PathLogin + "?rd=")
	screenshot("e2e-login.png")
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("sekisho-login"))); err != nil {
		t.Fatalf("clicking login: %v", err)
	}
	waitPath("/zaimu/ledger?year=2026")
	if err := chromedp.Do(bctx, chromedp.WaitVisible(chromedp.ID("who"))); err != nil {
		t.Fatalf("protected page: %v", err)
	}
	who, _ = chromedp.Run(bctx, chromedp.Text(chromedp.ID("who")))
	amr, _ := chromedp.Run(bctx, chromedp.Text(chromedp.ID("amr")))
	screenshot("e2e-protected.png")
	if !strings.Contains(who, "山田 太郎 (yamada) — 財務課") {
		t.Errorf("protected page shows %q", who)
	}
	if amr != "hwk user uv" {
		t.Errorf("amr = %q, want hwk user uv", amr)
	}
	kinds := strings.Join(events.kinds(), ",")
	if kinds != "invite,enroll,login_success" {
		t.Errorf("events = %s", kinds)
	}

	// A step-up, as the proxy asks for one before a 3A page.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+PathLogin+"?stepup=1&rd="+url.QueryEscape(base+"/zaimu/export")),
		chromedp.WaitVisible(chromedp.ID("sekisho-login")),
		chromedp.Click(chromedp.ID("sekisho-login")),
	); err != nil {
		t.Fatalf("step-up: %v", err)
	}
	waitPath("/zaimu/export")
	if ev := events.last(EventStepUp); ev == nil || ev.User != "yamada" {
		t.Errorf("step-up event: %+v (events %v)", ev, events.kinds())
	}

	// The script's own base64url conversion, for browsers without the
	// WebAuthn JSON helpers: remove them from the page, then sign in again.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+PathLogin+"?stepup=1&rd="+url.QueryEscape(base+"/zaimu/fallback")),
		chromedp.WaitVisible(chromedp.ID("sekisho-login")),
	); err != nil {
		t.Fatal(err)
	}
	removed, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`
		delete PublicKeyCredential.parseRequestOptionsFromJSON;
		delete PublicKeyCredential.parseCreationOptionsFromJSON;
		delete PublicKeyCredential.prototype.toJSON;
		typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'undefined' && typeof PublicKeyCredential.prototype.toJSON === 'undefined'`))
	if err != nil || !removed {
		t.Fatalf("removing the JSON helpers: %v %v", removed, err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("sekisho-login"))); err != nil {
		t.Fatal(err)
	}
	waitPath("/zaimu/fallback")

	// The account page lists the passkey; signing out ends the session.
	if err := chromedp.Do(bctx, chromedp.Navigate(base+PathAccount), chromedp.WaitVisible(chromedp.CSS("form.logout button"))); err != nil {
		t.Fatalf("account page: %v", err)
	}
	rows, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('table.list tbody tr').length`))
	if err != nil || rows != 1 {
		t.Errorf("account page lists %d passkeys (%v), want 1", rows, err)
	}
	screenshot("e2e-account.png")
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS("form.logout button"))); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	waitPath(PathLogin + "?logged_out=1")
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/zaimu/")); err != nil {
		t.Fatal(err)
	}
	waitPath(PathLogin + "?rd=")
	if !strings.Contains(strings.Join(events.kinds(), ","), "logout") {
		t.Errorf("no logout event: %v", events.kinds())
	}

	// Enrollment through the script's own conversion, too.
	if err := st.CreateUser(ctx, &store.User{ID: "sato", DisplayName: "佐藤 花子", Department: "人事課"}); err != nil {
		t.Fatal(err)
	}
	token2, err := svc.Invite(ctx, "sato", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+PathEnroll+"?token="+token2),
		chromedp.WaitVisible(chromedp.ID("sekisho-enroll")),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`
		delete PublicKeyCredential.parseCreationOptionsFromJSON;
		delete PublicKeyCredential.prototype.toJSON;
		typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'undefined'`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("sekisho-enroll"))); err != nil {
		t.Fatal(err)
	}
	waitPath(PathLogin + "?enrolled=1")
	if sc, _ := st.ListCredentials(ctx, "sato"); len(sc) != 1 || len(sc[0].Transports) == 0 {
		t.Errorf("sato's passkey after the fallback enrollment: %+v", sc)
	}
	if errors.Is(bctx.Err(), context.DeadlineExceeded) {
		t.Fatal("browser test ran out of time")
	}
}
