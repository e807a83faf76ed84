package authn

import (
	"github.com/sekisho/sekisho/authn/authntest"

	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sekisho/sekisho/config"
)

func TestEnrollLoginReachProtected(t *testing.T) {
	env := newEnv(t)
	c, a := env.enrolled("yamada", "zaimu-user")

	// Not signed in: a browser is sent to the login page with rd.
	res := env.get(c, testOrigin+"/ledger?year=2026", "text/html")
	if res.status != http.StatusSeeOther {
		t.Fatalf("protected page without session: %d, want 303", res.status)
	}
	loc, _ := url.Parse(res.header.Get("Location"))
	if loc.Path != PathLogin || loc.Query().Get("rd") != testOrigin+"/ledger?year=2026" {
		t.Fatalf("login redirect = %s", loc)
	}

	// The login page carries the (validated) rd for the script.
	page := env.get(c, testOrigin+loc.String(), "text/html")
	if page.status != http.StatusOK || !strings.Contains(string(page.body), `data-rd="https://zaimu.example.lg.jp/ledger?year=2026"`) {
		t.Fatalf("login page %d lacks rd: %s", page.status, page.body)
	}

	body, _ := json.Marshal(map[string]string{"rd": loc.Query().Get("rd")})
	fin, _ := env.login(c, a, string(body), authntest.Overrides{})
	if fin.status != http.StatusOK {
		t.Fatalf("login finish: %d %s", fin.status, fin.body)
	}
	if got := fin.json(t)["redirect"]; got != testOrigin+"/ledger?year=2026" {
		t.Errorf("redirect = %v", got)
	}

	res = env.get(c, testOrigin+"/ledger", "text/html")
	if res.status != http.StatusOK || string(res.body) != "hello yamada roles=zaimu-user amr=hwk,user,uv" {
		t.Fatalf("protected page after login: %d %q", res.status, res.body)
	}
	// The login page sends a signed-in user straight on.
	again := env.get(c, testOrigin+loc.String(), "text/html")
	if again.status != http.StatusSeeOther || again.header.Get("Location") != testOrigin+"/ledger?year=2026" {
		t.Errorf("login page when signed in: %d %s", again.status, again.header.Get("Location"))
	}

	me := env.get(c, testOrigin+PathMe, "")
	if me.status != http.StatusOK {
		t.Fatalf("me: %d %s", me.status, me.body)
	}
	m := me.json(t)
	if m["user"] != "yamada" || m["auth_time"] != "2026-04-01T09:00:00Z" || m["expiry"] != "2026-04-01T19:00:00Z" {
		t.Errorf("me = %v", m)
	}
	if diff := cmp.Diff([]any{"hwk", "user", "uv"}, m["amr"]); diff != "" {
		t.Errorf("me amr (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{EventInvite, EventEnroll, EventLoginSuccess}, env.events.kinds()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	creds, _ := env.st.ListCredentials(context.Background(), "yamada")
	if len(creds) != 1 || creds[0].SignCount != 1 || !creds[0].UserVerified || creds[0].LastUsedAt.IsZero() {
		t.Errorf("stored credential after login: %+v", creds)
	}
}

func TestLoginWithDeviceCertificateAddsMTLS(t *testing.T) {
	env := newEnv(t)
	c, a := env.enrolled("sato")
	env.setDevice("pc-0012", strings.Repeat("ab", 32))
	if fin, _ := env.login(c, a, "", authntest.Overrides{}); fin.status != http.StatusOK {
		t.Fatalf("login: %d %s", fin.status, fin.body)
	}
	res := env.get(c, testOrigin+"/", "text/html")
	if !strings.HasSuffix(string(res.body), "amr=hwk,user,uv,mtls") {
		t.Fatalf("protected page: %q", res.body)
	}
	// The session is bound to the device: without the certificate it is refused.
	env.setDevice("", "")
	if res := env.get(c, testOrigin+"/", "application/json"); res.status != http.StatusUnauthorized {
		t.Fatalf("session without its device: %d, want 401", res.status)
	}
}

func TestLoginRefusals(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*config.Config)
		begin  string
		o      authntest.Overrides
		status int
		reason string
	}{
		{name: "wrong origin", o: authntest.Overrides{Origin: "https://zaimu.example.lg.jp.evil.test"}, status: 401, reason: ReasonOrigin},
		{name: "other route origin", o: authntest.Overrides{Origin: "https://jinji.example.lg.jp"}, status: 401, reason: ReasonOrigin},
		{name: "wrong rp id", o: authntest.Overrides{RPID: "evil.test"}, status: 401, reason: ReasonRPID},
		{name: "parent rp id", o: authntest.Overrides{RPID: "lg.jp"}, status: 401, reason: ReasonRPID},
		{name: "wrong challenge", o: authntest.Overrides{Challenge: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, status: 401, reason: ReasonChallenge},
		{name: "uv missing where required", o: authntest.Overrides{NoUV: true}, status: 401, reason: ReasonUVRequired},
		{name: "uv missing at step-up", mod: func(c *config.Config) { c.WebAuthn.UserVerification = "preferred" },
			begin: `{"stepup":true}`, o: authntest.Overrides{NoUV: true}, status: 401, reason: ReasonUVRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mods []func(*config.Config)
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			env := newEnv(t, mods...)
			c, a := env.enrolled("suzuki")
			fin, _ := env.login(c, a, tt.begin, tt.o)
			if fin.status != tt.status {
				t.Fatalf("status %d, want %d: %s", fin.status, tt.status, fin.body)
			}
			ev := env.events.last(EventLoginFailure)
			if ev == nil || ev.Reason != tt.reason {
				t.Fatalf("failure event %+v, want reason %s", ev, tt.reason)
			}
			if res := env.get(c, testOrigin+"/", "application/json"); res.status != http.StatusUnauthorized {
				t.Errorf("refused login still reached the app: %d", res.status)
			}
		})
	}
}

func TestUVPreferredLoginWithoutUV(t *testing.T) {
	env := newEnv(t, func(c *config.Config) { c.WebAuthn.UserVerification = "preferred" })
	c, a := env.enrolled("kato")
	if fin, _ := env.login(c, a, "", authntest.Overrides{NoUV: true}); fin.status != http.StatusOK {
		t.Fatalf("login without UV where preferred: %d %s", fin.status, fin.body)
	}
	res := env.get(c, testOrigin+"/", "text/html")
	if !strings.HasSuffix(string(res.body), "amr=hwk,user") {
		t.Fatalf("amr without uv: %q", res.body)
	}
}

func TestReplayRefused(t *testing.T) {
	env := newEnv(t)
	c, a := env.enrolled("tanaka")
	fin, assertion := env.login(c, a, "", authntest.Overrides{})
	if fin.status != http.StatusOK {
		t.Fatalf("login: %d %s", fin.status, fin.body)
	}

	// The same assertion again: the ceremony cookie is gone.
	other := env.client()
	if res := env.post(other, PathLoginFinish, assertion); res.status != http.StatusBadRequest || res.errCode() != "ceremony" {
		t.Errorf("replayed assertion without ceremony: %d %s", res.status, res.body)
	}

	// The same assertion against a fresh ceremony: the challenge differs.
	if res := env.post(other, PathLoginBegin, nil); res.status != http.StatusOK {
		t.Fatalf("begin: %d", res.status)
	}
	if res := env.post(other, PathLoginFinish, assertion); res.status != http.StatusUnauthorized {
		t.Errorf("replayed assertion on a new ceremony: %d %s", res.status, res.body)
	}
	if ev := env.events.last(EventLoginFailure); ev == nil || ev.Reason != ReasonChallenge {
		t.Errorf("failure event %+v, want %s", ev, ReasonChallenge)
	}

	// A ceremony cookie kept and sent again after it finished: refused
	// even with a freshly signed assertion over its challenge.
	third := env.client()
	begin := env.post(third, PathLoginBegin, nil)
	ceremonyURL, _ := url.Parse(testOrigin + ceremonyCookiePath)
	kept := third.Jar.Cookies(ceremonyURL)
	first, err := a.Get(begin.body, testOrigin, authntest.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if res := env.post(third, PathLoginFinish, first); res.status != http.StatusOK {
		t.Fatalf("first finish: %d %s", res.status, res.body)
	}
	third.Jar.SetCookies(ceremonyURL, kept)
	second, _ := a.Get(begin.body, testOrigin, authntest.Overrides{})
	if res := env.post(third, PathLoginFinish, second); res.status != http.StatusBadRequest {
		t.Errorf("reused ceremony: %d %s", res.status, res.body)
	}
	if ev := env.events.last(EventLoginFailure); ev == nil || ev.Reason != ReasonReplay {
		t.Errorf("failure event %+v, want %s", ev, ReasonReplay)
	}
}

func TestCeremonyExpires(t *testing.T) {
	env := newEnv(t)
	c, a := env.enrolled("ito")
	begin := env.post(c, PathLoginBegin, nil)
	env.clock.Advance(5*time.Minute + time.Second)
	assertion, _ := a.Get(begin.body, testOrigin, authntest.Overrides{})
	if res := env.post(c, PathLoginFinish, assertion); res.status != http.StatusBadRequest || res.errCode() != "ceremony" {
		t.Fatalf("expired ceremony: %d %s", res.status, res.body)
	}
}

func TestCounterRegression(t *testing.T) {
	env := newEnv(t)
	c, a := env.enrolled("watanabe")
	for range 2 {
		if fin, _ := env.login(c, a, "", authntest.Overrides{}); fin.status != http.StatusOK {
			t.Fatalf("login: %d %s", fin.status, fin.body)
		}
	}
	// A clone replays with the counter it knew.
	one := uint32(1)
	fin, _ := env.login(env.client(), a, "", authntest.Overrides{Counter: &one})
	if fin.status != http.StatusForbidden {
		t.Fatalf("counter went backwards: %d %s", fin.status, fin.body)
	}
	if ev := env.events.last(EventCounterRegression); ev == nil || ev.User != "watanabe" || ev.CredentialID == "" {
		t.Fatalf("counter_regression event: %+v", ev)
	}
	creds, _ := env.st.ListCredentials(context.Background(), "watanabe")
	if len(creds) != 1 || !creds[0].CloneWarning || creds[0].SignCount != 2 {
		t.Fatalf("credential after regression: %+v", creds[0])
	}
	// The flagged credential stays refused, even with a good counter.
	fin, _ = env.login(env.client(), a, "", authntest.Overrides{})
	if fin.status != http.StatusForbidden {
		t.Fatalf("flagged credential: %d %s", fin.status, fin.body)
	}
	if ev := env.events.last(EventLoginFailure); ev == nil || ev.Reason != ReasonCloneWarning {
		t.Fatalf("failure event: %+v", ev)
	}
}

func TestDisabledUser(t *testing.T) {
	env := newEnv(t)
	c, a := env.enrolled("kobayashi")
	if fin, _ := env.login(c, a, "", authntest.Overrides{}); fin.status != http.StatusOK {
		t.Fatalf("login: %d", fin.status)
	}
	if res := env.get(c, testOrigin+"/", "text/html"); res.status != http.StatusOK {
		t.Fatalf("before disable: %d", res.status)
	}
	ctx := context.Background()
	u, _ := env.st.GetUser(ctx, "kobayashi")
	u.Disabled = true
	if err := env.st.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	// The user cache believes at most one second.
	env.clock.Advance(time.Second)
	if res := env.get(c, testOrigin+"/", "application/json"); res.status != http.StatusUnauthorized {
		t.Fatalf("existing session of a disabled user: %d", res.status)
	}
	fin, _ := env.login(env.client(), a, "", authntest.Overrides{})
	if fin.status != http.StatusForbidden || fin.errCode() != "disabled" {
		t.Fatalf("login of a disabled user: %d %s", fin.status, fin.body)
	}
	if ev := env.events.last(EventLoginFailure); ev == nil || ev.Reason != ReasonDisabled {
		t.Fatalf("failure event: %+v", ev)
	}
}

func TestRoleChangeAppliesWithinASecond(t *testing.T) {
	env := newEnv(t)
	c, a := env.enrolled("nakamura", "kyuyo-user")
	env.login(c, a, "", authntest.Overrides{})
	if res := env.get(c, testOrigin+"/", "text/html"); !strings.Contains(string(res.body), "roles=kyuyo-user ") {
		t.Fatalf("before: %q", res.body)
	}
	ctx := context.Background()
	u, _ := env.st.GetUser(ctx, "nakamura")
	u.Roles = []string{"zaimu-user"}
	if err := env.st.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	env.clock.Advance(time.Second)
	if res := env.get(c, testOrigin+"/", "text/html"); !strings.Contains(string(res.body), "roles=zaimu-user ") {
		t.Fatalf("after a personnel transfer: %q", res.body)
	}
}

func TestInvitations(t *testing.T) {
	t.Run("expired", func(t *testing.T) {
		env := newEnv(t)
		env.addUser("mori", "森 花子")
		tok := env.invite("mori")
		env.clock.Advance(time.Hour + time.Second)
		res, _ := env.enroll(env.client(), authntest.New(), tok, authntest.Overrides{})
		if res.status != http.StatusGone || res.errCode() != "invitation" {
			t.Fatalf("expired invitation: %d %s", res.status, res.body)
		}
		if page := env.get(env.client(), testOrigin+PathEnroll+"?token="+tok, "text/html"); page.status != http.StatusGone {
			t.Fatalf("enroll page of expired invitation: %d", page.status)
		}
	})
	t.Run("reused", func(t *testing.T) {
		env := newEnv(t)
		env.addUser("mori", "森 花子")
		tok := env.invite("mori")
		if res, _ := env.enroll(env.client(), authntest.New(), tok, authntest.Overrides{}); res.status != http.StatusOK {
			t.Fatalf("first use: %d %s", res.status, res.body)
		}
		if res, _ := env.enroll(env.client(), authntest.New(), tok, authntest.Overrides{}); res.status != http.StatusGone {
			t.Fatalf("second use: %d %s", res.status, res.body)
		}
	})
	t.Run("two ceremonies, one invitation", func(t *testing.T) {
		env := newEnv(t)
		env.addUser("mori", "森 花子")
		tok := env.invite("mori")
		body, _ := json.Marshal(map[string]string{"token": tok})
		c1, c2 := env.client(), env.client()
		b1, b2 := env.post(c1, PathRegisterBegin, body), env.post(c2, PathRegisterBegin, body)
		cred1, _, _ := authntest.New().Create(b1.body, testOrigin, authntest.Overrides{})
		cred2, _, _ := authntest.New().Create(b2.body, testOrigin, authntest.Overrides{})
		if res := env.post(c1, PathRegisterFinish, cred1); res.status != http.StatusOK {
			t.Fatalf("first finish: %d %s", res.status, res.body)
		}
		if res := env.post(c2, PathRegisterFinish, cred2); res.status != http.StatusGone {
			t.Fatalf("second finish on the same invitation: %d %s", res.status, res.body)
		}
		creds, _ := env.st.ListCredentials(context.Background(), "mori")
		if len(creds) != 1 {
			t.Fatalf("%d credentials stored, want 1", len(creds))
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		env := newEnv(t)
		res, _ := env.enroll(env.client(), authntest.New(), "bm90LWEtdG9rZW4", authntest.Overrides{})
		if res.status != http.StatusGone {
			t.Fatalf("unknown token: %d %s", res.status, res.body)
		}
	})
	t.Run("stored only as hash", func(t *testing.T) {
		env := newEnv(t)
		env.addUser("mori", "森 花子")
		tok := env.invite("mori")
		inv, err := env.st.PeekInvitation(context.Background(), tokenHash(tok), env.clock.Now())
		if err != nil || inv.UserID != "mori" || !inv.ExpiresAt.Equal(env.clock.Now().Add(time.Hour)) {
			t.Fatalf("invitation %+v, %v", inv, err)
		}
		if _, err := env.st.PeekInvitation(context.Background(), []byte(tok), env.clock.Now()); err == nil {
			t.Fatal("the raw token must not be a stored key")
		}
	})
}

func TestRegistrationRefusals(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*config.Config)
		auth   func(*authntest.Authenticator)
		o      authntest.Overrides
		status int
		code   string
	}{
		{name: "aaguid not allowed", mod: func(c *config.Config) { c.WebAuthn.AllowedAAGUIDs = []string{"08987058-cadc-4b81-b6e1-30de50dcbe96"} },
			status: 403, code: "aaguid"},
		{name: "backup eligible refused", mod: func(c *config.Config) { c.WebAuthn.RefuseBackupEligible = true },
			auth: func(a *authntest.Authenticator) { a.BE, a.BS = true, true }, status: 403, code: "backup_eligible"},
		{name: "uv missing", o: authntest.Overrides{NoUV: true}, status: 400, code: "uv_required"},
		{name: "wrong origin", o: authntest.Overrides{Origin: "https://evil.test"}, status: 400, code: "origin"},
		{name: "wrong rp id", o: authntest.Overrides{RPID: "evil.test"}, status: 400, code: "register_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mods []func(*config.Config)
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			env := newEnv(t, mods...)
			env.addUser("ono", "小野 次郎")
			tok := env.invite("ono")
			a := authntest.New()
			if tt.auth != nil {
				tt.auth(a)
			}
			res, _ := env.enroll(env.client(), a, tok, tt.o)
			if res.status != tt.status || res.errCode() != tt.code {
				t.Fatalf("got %d %s, want %d %s", res.status, res.body, tt.status, tt.code)
			}
			creds, _ := env.st.ListCredentials(context.Background(), "ono")
			if len(creds) != 0 {
				t.Fatalf("refused registration stored %d credentials", len(creds))
			}
			// A refusal after verification leaves the invitation usable.
			if _, err := env.st.PeekInvitation(context.Background(), tokenHash(tok), env.clock.Now()); err != nil {
				t.Errorf("invitation consumed by a refused registration: %v", err)
			}
		})
	}
}

func TestAllowedAAGUIDAccepted(t *testing.T) {
	a := authntest.New()
	env := newEnv(t, func(c *config.Config) { c.WebAuthn.AllowedAAGUIDs = []string{formatAAGUID(a.AAGUID[:])} })
	env.addUser("ueda", "上田")
	if res, _ := env.enroll(env.client(), a, env.invite("ueda"), authntest.Overrides{}); res.status != http.StatusOK {
		t.Fatalf("allowed AAGUID: %d %s", res.status, res.body)
	}
}

func TestCrossSiteAndContentType(t *testing.T) {
	env := newEnv(t)
	c := env.client()
	req, _ := http.NewRequest(http.MethodPost, testOrigin+PathLoginBegin, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.test")
	if res := env.do(c, req); res.status != http.StatusForbidden {
		t.Errorf("cross-site begin: %d", res.status)
	}
	req, _ = http.NewRequest(http.MethodPost, testOrigin+PathLoginBegin, strings.NewReader("rd=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res := env.do(c, req); res.status != http.StatusUnsupportedMediaType {
		t.Errorf("form-encoded begin: %d", res.status)
	}
}

func TestRateLimits(t *testing.T) {
	cfg := testConfig()
	env := newEnvWith(t, cfg, WithRateLimits(RateLimits{PerIP: 0.001, IPBurst: 3, PerUser: 1000, UserBurst: 1000}))
	c := env.client()
	for i := range 3 {
		if res := env.post(c, PathLoginBegin, nil); res.status != http.StatusOK {
			t.Fatalf("begin %d: %d", i, res.status)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, testOrigin+PathLoginBegin, nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-Language", "ja")
	res := env.do(c, req)
	if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d, Retry-After %q", res.status, res.header.Get("Retry-After"))
	}
	if msg, _ := res.json(t)["message"].(string); !strings.Contains(msg, "ロック") {
		t.Errorf("lockout message %q", msg)
	}

	t.Run("per user", func(t *testing.T) {
		env := newEnvWith(t, testConfig(), WithRateLimits(RateLimits{PerIP: 1000, IPBurst: 1000, PerUser: 0.001, UserBurst: 2}))
		env.addUser("abe", "阿部")
		tok := env.invite("abe")
		body, _ := json.Marshal(map[string]string{"token": tok})
		c := env.client()
		for range 2 {
			env.post(c, PathRegisterBegin, body)
		}
		if res := env.post(c, PathRegisterBegin, body); res.status != http.StatusTooManyRequests {
			t.Fatalf("third registration begin of one user: %d", res.status)
		}
	})
}

func TestRequireLoginAndStepUp(t *testing.T) {
	env := newEnv(t)
	c := env.client()
	res := env.get(c, testOrigin+"/api/items", "application/json")
	if res.status != http.StatusUnauthorized || res.errCode() != "login_required" {
		t.Fatalf("API without session: %d %s", res.status, res.body)
	}
	rec := httptest.NewRecorder()
	req, _ := http.NewRequest(http.MethodGet, testOrigin+"/export?id=1", nil)
	req.Host = testHost
	req.Header.Set("Accept", "text/html")
	env.svc.RequireStepUp(rec, req, []string{"auth_too_old"})
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusSeeOther || loc.Query().Get("stepup") != "1" || loc.Query().Get("rd") != "http://zaimu.example.lg.jp/export?id=1" {
		t.Fatalf("step-up redirect %d %s", rec.Code, loc)
	}
	rec = httptest.NewRecorder()
	req.Header.Set("Accept", "application/json")
	env.svc.RequireStepUp(rec, req, []string{"auth_too_old"})
	var body struct {
		Error   string
		Reasons []string
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != http.StatusUnauthorized || body.Error != "stepup_required" || !slices.Equal(body.Reasons, []string{"auth_too_old"}) {
		t.Fatalf("API step-up: %d %s", rec.Code, rec.Body)
	}
}

func TestStepUpKeepsSession(t *testing.T) {
	env := newEnv(t, func(c *config.Config) { c.WebAuthn.UserVerification = "preferred" })
	c, a := env.enrolled("hayashi")
	env.login(c, a, "", authntest.Overrides{NoUV: true})
	before := env.get(c, testOrigin+PathMe, "").json(t)
	env.clock.Advance(20 * time.Minute)
	fin, _ := env.login(c, a, `{"stepup":true}`, authntest.Overrides{})
	if fin.status != http.StatusOK {
		t.Fatalf("step-up: %d %s", fin.status, fin.body)
	}
	after := env.get(c, testOrigin+PathMe, "").json(t)
	if after["expiry"] != before["expiry"] || after["auth_time"] != "2026-04-01T09:20:00Z" {
		t.Errorf("step-up: before %v after %v", before, after)
	}
	if diff := cmp.Diff([]any{"hwk", "user", "uv"}, after["amr"]); diff != "" {
		t.Errorf("amr after step-up (-want +got):\n%s", diff)
	}
	if env.events.last(EventStepUp) == nil {
		t.Error("no stepup event")
	}
}

func TestUnknownCredential(t *testing.T) {
	env := newEnv(t)
	_, a := env.enrolled("fujita")
	ctx := context.Background()
	creds, _ := env.st.ListCredentials(ctx, "fujita")
	if err := env.st.DeleteCredential(ctx, "fujita", creds[0].ID); err != nil {
		t.Fatal(err)
	}
	fin, _ := env.login(env.client(), a, "", authntest.Overrides{})
	if fin.status != http.StatusUnauthorized || fin.errCode() != "unknown_credential" {
		t.Fatalf("deleted credential: %d %s", fin.status, fin.body)
	}
}

func TestStoreErrorsAreNotLeaked(t *testing.T) {
	env := newEnv(t)
	_, a := env.enrolled("okada")
	env.st.Close()
	fin, _ := env.login(env.client(), a, "", authntest.Overrides{})
	// The store is unreachable: a clear "try again" answer, nothing of
	// the database's error.
	if fin.status != http.StatusServiceUnavailable || fin.errCode() != "unavailable" ||
		fin.header.Get("Retry-After") == "" || strings.Contains(string(fin.body), "sql") {
		t.Fatalf("store failure: %d %v %s", fin.status, fin.header, fin.body)
	}
}

func TestRefreshSlidesIdleTimeout(t *testing.T) {
	env := newEnv(t)
	c, a := env.enrolled("matsumoto")
	env.login(c, a, "", authntest.Overrides{})
	// Active every 20 minutes for an hour: the 30-minute idle timeout
	// slides because each request reissues the cookie.
	for i := range 3 {
		env.clock.Advance(20 * time.Minute)
		res := env.get(c, testOrigin+"/", "text/html")
		if res.status != http.StatusOK {
			t.Fatalf("request %d after 20 min: %d", i, res.status)
		}
		if !strings.Contains(res.header.Get("Set-Cookie"), "__Host-sekisho=") {
			t.Fatalf("request %d: cookie not reissued", i)
		}
	}
	// Idle for 31 minutes: the session has ended.
	env.clock.Advance(31 * time.Minute)
	if res := env.get(c, testOrigin+"/", "application/json"); res.status != http.StatusUnauthorized {
		t.Fatalf("after 31 idle minutes: %d", res.status)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	env := newEnvWith(t, testConfig(), WithRegisterer(reg), WithRateLimits(RateLimits{PerIP: 1000, IPBurst: 1000, PerUser: 1000, UserBurst: 1000}))
	c, a := env.enrolled("metrics")
	env.login(c, a, "", authntest.Overrides{})
	env.login(env.client(), a, "", authntest.Overrides{NoUV: true})
	for labels, want := range map[[2]string]float64{{"login", "ok"}: 1, {"login", "fail"}: 1, {"register", "ok"}: 1} {
		if got := testutil.ToFloat64(env.svc.metrics.ceremonies.WithLabelValues(labels[0], labels[1])); got != want {
			t.Errorf("ceremonies%v = %v, want %v", labels, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "sekisho_authn_ceremonies_total"); err != nil || n != 3 {
		t.Errorf("registered series: %d, %v", n, err)
	}
}
