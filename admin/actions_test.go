package admin

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/reqctx"
	"github.com/sekisho/sekisho/store"
)

func TestUsersPage(t *testing.T) {
	e := newEnv(t)
	e.mustUser("alice", "山田 花子", "財務課", "財務")
	e.mustUser("bob", "鈴木 一郎", "税務課")
	e.mustPasskey("alice", "職場のPC", 1)
	e.mustDevice("PC-001", "alice", store.DeviceActive)
	r := e.get(Prefix + "/users")
	checkTranslated(t, "/users", r.Body)
	// 1 of 3 enabled staff (admin1, alice, bob) has a passkey.
	contains(t, r.Body, `id="kpi">33.3%`, "山田 花子", "財務課", "パスキー未登録",
		`href="/.sekisho/admin/users/view?id=alice"`)
	r = e.get(Prefix + "/users?q=税務")
	contains(t, r.Body, "鈴木 一郎", "1 件を表示", `id="kpi">33.3%`)
	lacks(t, r.Body, "山田 花子")
	r = e.get(Prefix + "/users/view?id=alice")
	checkTranslated(t, "/users/view", r.Body)
	contains(t, r.Body, "利用者 alice", "職場のPC", "PC-001", "パスキー登録用URLを発行", "無効化（セッションも即時終了）")
	if r := e.get(Prefix + "/users/view?id=nobody"); r.Status != http.StatusNotFound {
		t.Errorf("unknown user = %d; want 404", r.Status)
	}
}

func TestAddUser(t *testing.T) {
	e := newEnv(t)
	r := e.post(Prefix+"/users", url.Values{"id": {"sato"}, "display_name": {"佐藤 次郎"}, "department": {"人事課"}, "roles": {"人事, role:人事管理者 人事"}})
	if r.Status != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "/users/view?") {
		t.Fatalf("add user = %d %q\n%s", r.Status, r.Header.Get("Location"), r.Body)
	}
	u, err := e.store.GetUser(context.Background(), "sato")
	if err != nil || u.DisplayName != "佐藤 次郎" || u.Department != "人事課" || strings.Join(u.Roles, ",") != "人事,人事管理者" {
		t.Fatalf("stored user %+v, %v", u, err)
	}
	rec := e.wantAdminRecord("user_add", "sato")
	if !strings.Contains(rec.Detail, "roles=人事,人事管理者") {
		t.Errorf("detail %q", rec.Detail)
	}
	r = e.get(r.Header.Get("Location"))
	contains(t, r.Body, "利用者を追加しました")

	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"id": {"sato"}}, "その利用者IDは既に使われています"},
		{url.Values{"id": {"has space"}}, "利用者IDは空白"},
		{url.Values{"id": {""}}, "利用者IDは空白"},
		{url.Values{"id": {"ok"}, "display_name": {"a\x00b"}}, "入力に使えない文字"},
	} {
		r := e.post(Prefix+"/users", tc.form)
		if r.Status != http.StatusBadRequest {
			t.Errorf("add %v = %d; want 400", tc.form, r.Status)
		}
		contains(t, r.Body, tc.want)
	}
}

func TestInviteShowsURLOnce(t *testing.T) {
	e := newEnv(t)
	e.mustUser("alice", "山田 花子", "財務課")
	r := e.post(Prefix+"/users/invite", url.Values{"id": {"alice"}, "ttl": {"72h"}})
	if r.Status != 200 {
		t.Fatalf("invite = %d\n%s", r.Status, r.Body)
	}
	contains(t, r.Body, "このURLは今回だけ表示されます")
	m := regexp.MustCompile(`<code id="enroll-url">([^<]+)</code>`).FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatal("no enrollment URL on the page")
	}
	link, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil || link.Path != "/.sekisho/enroll" || link.Query().Get("token") == "" {
		t.Fatalf("enrollment URL %q", m[1])
	}
	inv, err := e.store.PeekInvitation(context.Background(), tokenHash(link.Query().Get("token")), e.clock.Now())
	if err != nil || inv.UserID != "alice" || inv.CreatedBy != "admin1" || inv.ExpiresAt.Sub(e.clock.Now()) != 72*time.Hour {
		t.Fatalf("invitation %+v, %v", inv, err)
	}
	rec := e.wantAdminRecord("user_invite", "alice")
	if strings.Contains(rec.Detail, link.Query().Get("token")) {
		t.Error("the token leaked into the audit record")
	}
	// The user's page does not show it again.
	if r := e.get(Prefix + "/users/view?id=alice"); strings.Contains(r.Body, link.Query().Get("token")) {
		t.Error("the token is shown again")
	}
	if r := e.post(Prefix+"/users/invite", url.Values{"id": {"alice"}, "ttl": {"9999h"}}); r.Status != http.StatusBadRequest {
		t.Errorf("ttl 9999h = %d; want 400", r.Status)
	}
}

func TestDisableEnableUser(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.mustUser("alice", "山田 花子", "財務課")
	tok, err := e.session.Issue(ctx, &session.Claims{User: "alice", AMR: []string{"hwk", "uv"}, AuthTime: e.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.session.Verify(ctx, tok, ""); err != nil {
		t.Fatalf("fresh session: %v", err)
	}
	// A reason is required.
	r := e.post(Prefix+"/users/disable", url.Values{"id": {"alice"}})
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "理由を入力してください") {
		t.Fatalf("disable without reason = %d", r.Status)
	}
	if u, _ := e.store.GetUser(ctx, "alice"); u.Disabled {
		t.Fatal("disabled without a reason")
	}
	e.clock.Advance(2 * time.Second)
	r = e.post(Prefix+"/users/disable", url.Values{"id": {"alice"}, "reason": {"退職"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("disable = %d\n%s", r.Status, r.Body)
	}
	if u, _ := e.store.GetUser(ctx, "alice"); !u.Disabled {
		t.Error("user not disabled")
	}
	if _, err := e.session.Verify(ctx, tok, ""); err == nil {
		t.Error("the disabled user's session still verifies")
	}
	revs, _ := e.store.RevocationsSince(ctx, 0)
	if len(revs) != 1 || revs[0].Kind != store.RevokeUser || revs[0].Subject != "alice" || revs[0].By != "admin1" || revs[0].Reason != "退職" {
		t.Errorf("revocations %+v", revs)
	}
	if rec := e.wantAdminRecord("user_disable", "alice"); rec.Detail != "退職" {
		t.Errorf("detail %q", rec.Detail)
	}
	r = e.get(r.Header.Get("Location"))
	contains(t, r.Body, "利用者を無効化し", "有効化")

	r = e.post(Prefix+"/users/enable", url.Values{"id": {"alice"}, "reason": {"誤操作"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("enable = %d", r.Status)
	}
	if u, _ := e.store.GetUser(ctx, "alice"); u.Disabled {
		t.Error("user still disabled")
	}
	e.wantAdminRecord("user_enable", "alice")
	if r := e.post(Prefix+"/users/disable", url.Values{"id": {"nobody"}, "reason": {"x"}}); r.Status != http.StatusNotFound {
		t.Errorf("disable unknown = %d", r.Status)
	}
}

func TestDeletePasskey(t *testing.T) {
	e := newEnv(t)
	e.mustUser("alice", "山田 花子", "財務課")
	c := e.mustPasskey("alice", "複製?", 7)
	r := e.post(Prefix+"/users/passkeys/delete", url.Values{"id": {"alice"}, "credential": {hexID(c.ID)}, "reason": {"clone warning"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("delete passkey = %d\n%s", r.Status, r.Body)
	}
	if _, err := e.store.GetCredential(context.Background(), c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("passkey still there: %v", err)
	}
	rec := e.wantAdminRecord("passkey_delete", "alice")
	if !strings.Contains(rec.Detail, hexID(c.ID)) || !strings.Contains(rec.Detail, "clone warning") {
		t.Errorf("detail %q", rec.Detail)
	}
	if r := e.post(Prefix+"/users/passkeys/delete", url.Values{"id": {"alice"}, "credential": {"zz"}}); r.Status != http.StatusBadRequest {
		t.Errorf("bad credential id = %d", r.Status)
	}
}

func TestDevicesPage(t *testing.T) {
	e := newEnv(t)
	e.mustUser("alice", "山田 花子", "財務課")
	e.mustDevice("PC-001", "alice", store.DeviceActive)
	e.mustDevice("PC-666", "", store.DeviceRevoked)
	r := e.get(Prefix + "/devices")
	checkTranslated(t, "/devices", r.Body)
	contains(t, r.Body, "利用中 1 台、利用停止 1 台", "PC-001", `href="/.sekisho/admin/users/view?id=alice"`,
		`href="/.sekisho/admin/revoke?kind=device&amp;subject=PC-001"`, "利用再開")

	r = e.get(Prefix + "/devices?q=revoked")
	contains(t, r.Body, "PC-666")
	lacks(t, r.Body, ">PC-001<")
	if r := e.post(Prefix+"/devices/enable", url.Values{"id": {"PC-666"}}); r.Status != http.StatusBadRequest {
		t.Errorf("enable without reason = %d", r.Status)
	}
	r = e.post(Prefix+"/devices/enable", url.Values{"id": {"PC-666"}, "reason": {"初期化済み"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("enable device = %d", r.Status)
	}
	d, _ := e.store.GetDevice(context.Background(), "PC-666")
	if d.Status != store.DeviceActive {
		t.Errorf("device status %q", d.Status)
	}
	if rec := e.wantAdminRecord("device_enable", "PC-666"); rec.Detail != "初期化済み" {
		t.Errorf("detail %q", rec.Detail)
	}

	// A device awaiting registration (devices.registration: manual) is
	// shown as such and registered with a reason.
	e.mustDevice("PC-777", "alice", store.DevicePending)
	r = e.get(Prefix + "/devices")
	checkTranslated(t, "/devices", r.Body)
	contains(t, r.Body, "登録待ち 1 台", "登録待ち</span>", ">登録する</button>")
	r = e.post(Prefix+"/devices/enable", url.Values{"id": {"PC-777"}, "reason": {"資産台帳 No.1234 と照合"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("register device = %d", r.Status)
	}
	if d, _ := e.store.GetDevice(context.Background(), "PC-777"); d.Status != store.DeviceActive || d.Owner != "alice" {
		t.Errorf("registered device: %+v", d)
	}
	if rec := e.wantAdminRecord("device_register", "PC-777"); rec.Detail != "資産台帳 No.1234 と照合" {
		t.Errorf("detail %q", rec.Detail)
	}
	lacks(t, e.get(Prefix+"/devices").Body, "登録待ち 1 台")
}

// confirm posts the first step and returns the confirmation token.
func confirm(t *testing.T, e *env, form url.Values) (string, string) {
	t.Helper()
	f := url.Values{"step": {"confirm"}}
	for k, v := range form {
		f[k] = v
	}
	r := e.post(Prefix+"/revoke", f)
	if r.Status != 200 {
		t.Fatalf("confirm step = %d\n%s", r.Status, r.Body)
	}
	m := confirmRe.FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatal("no confirmation token on the confirmation page")
	}
	return html.UnescapeString(m[1]), r.Body
}

func TestKillSwitchDevice(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.mustUser("alice", "山田 花子", "財務課")
	e.mustDevice("PC-001", "alice", store.DeviceActive)
	tok, err := e.session.Issue(ctx, &session.Claims{User: "alice", Device: "PC-001", CertFP: "ab", AMR: []string{"hwk", "uv"}, AuthTime: e.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	// Issue records the session in the store too; an expired one on the
	// same device is not counted.
	if err := e.store.CreateSession(ctx, &store.Session{ID: "old", UserID: "alice", Device: "PC-001", CreatedAt: e.clock.Now().Add(-20 * time.Hour), ExpiresAt: e.clock.Now().Add(-10 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Second)
	form := url.Values{"kind": {"device"}, "subject": {"PC-001"}, "reason": {"マルウェア感染の疑い（CSIRT #12）"}}

	r := e.get(Prefix + "/revoke?kind=device&subject=PC-001")
	checkTranslated(t, "/revoke", r.Body)
	contains(t, r.Body, `value="PC-001"`, `value="device" checked`)

	// Straight to execution, without the confirmation step: refused.
	direct := url.Values{"step": {"execute"}}
	for k, v := range form {
		direct[k] = v
	}
	r = e.post(Prefix+"/revoke", direct)
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "確認画面を経ていないため実行しませんでした") {
		t.Fatalf("execute without confirmation = %d", r.Status)
	}
	direct.Set("confirm", "123.abc")
	if r := e.post(Prefix+"/revoke", direct); r.Status != http.StatusBadRequest {
		t.Fatalf("execute with a forged confirmation = %d", r.Status)
	}
	// No reason: refused at the first step.
	if r := e.post(Prefix+"/revoke", url.Values{"step": {"confirm"}, "kind": {"device"}, "subject": {"PC-001"}}); r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "理由を入力してください") {
		t.Fatalf("confirm without reason = %d", r.Status)
	}
	if revs, _ := e.store.RevocationsSince(ctx, 0); len(revs) != 0 {
		t.Fatalf("revoked before confirmation: %+v", revs)
	}

	token, body := confirm(t, e, form)
	checkTranslated(t, "confirm", body)
	contains(t, body, "端末 PC-001 を利用停止にし", "現在有効なセッション 1 件が終了します", "マルウェア感染の疑い", "操作者 admin1 として監査証跡に記録されます")

	// The token is bound to what was shown: another reason or subject fails.
	changed := url.Values{"step": {"execute"}, "kind": {"device"}, "subject": {"PC-002"}, "reason": form["reason"], "confirm": {token}}
	if r := e.post(Prefix+"/revoke", changed); r.Status != http.StatusBadRequest {
		t.Fatalf("execute for another subject = %d", r.Status)
	}
	changed.Set("subject", "PC-001")
	changed.Set("reason", "別の理由")
	if r := e.post(Prefix+"/revoke", changed); r.Status != http.StatusBadRequest {
		t.Fatalf("execute with another reason = %d", r.Status)
	}

	changed.Set("reason", form.Get("reason"))
	r = e.post(Prefix+"/revoke", changed)
	if r.Status != 200 {
		t.Fatalf("execute = %d\n%s", r.Status, r.Body)
	}
	contains(t, r.Body, "遮断しました: device PC-001")
	d, _ := e.store.GetDevice(ctx, "PC-001")
	if d.Status != store.DeviceRevoked || d.Reason != form.Get("reason") {
		t.Errorf("device %+v", d)
	}
	if _, err := e.session.Verify(ctx, tok, "ab"); err == nil {
		t.Error("a session on the isolated device still verifies")
	}
	revs, _ := e.store.RevocationsSince(ctx, 0)
	if len(revs) != 1 || revs[0].Kind != store.RevokeDevice || revs[0].By != "admin1" || revs[0].Reason != form.Get("reason") {
		t.Errorf("revocations %+v", revs)
	}
	rec := e.wantAdminRecord("revoke_device", "PC-001")
	if rec.Detail != form.Get("reason") || rec.RequestID != e.lastRequestID() {
		t.Errorf("record detail %q request %q; want the reason and request %s", rec.Detail, rec.RequestID, e.lastRequestID())
	}
}

func TestKillSwitchConfirmationExpires(t *testing.T) {
	e := newEnv(t)
	e.mustUser("alice", "山田 花子", "財務課")
	form := url.Values{"kind": {"user"}, "subject": {"alice"}, "reason": {"不正ログインの疑い"}}
	token, body := confirm(t, e, form)
	contains(t, body, "利用者 alice を無効化します", "パスキーは残ります")
	e.clock.Advance(confirmTTL + time.Second)
	f := url.Values{"step": {"execute"}, "confirm": {token}}
	for k, v := range form {
		f[k] = v
	}
	if r := e.post(Prefix+"/revoke", f); r.Status != http.StatusBadRequest {
		t.Fatalf("execute after the confirmation expired = %d", r.Status)
	}
	// Another admin session cannot use this one's confirmation either.
	token, _ = confirm(t, e, form)
	f.Set("confirm", token)
	e.setInfo(func(i *reqctx.Info) { i.SessionID = "another-admin-session" })
	if r := e.post(Prefix+"/revoke", f); r.Status != http.StatusBadRequest {
		t.Fatalf("execute from another session = %d", r.Status)
	}
	e.setInfo(func(i *reqctx.Info) { i.SessionID = "sess-admin1" })
	if r := e.post(Prefix+"/revoke", f); r.Status != 200 {
		t.Fatalf("execute = %d", r.Status)
	}
	if u, _ := e.store.GetUser(context.Background(), "alice"); !u.Disabled {
		t.Error("user not disabled by the kill switch")
	}
	e.wantAdminRecord("revoke_user", "alice")
}

func TestKillSwitchAllAndSession(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.mustUser("alice", "山田 花子", "財務課")
	tok, _ := e.session.Issue(ctx, &session.Claims{User: "alice", AMR: []string{"hwk"}, AuthTime: e.clock.Now()})
	e.clock.Advance(2 * time.Second)

	// One session.
	token, body := confirm(t, e, url.Values{"kind": {"session"}, "subject": {"sess-x"}, "reason": {"端末紛失"}})
	contains(t, body, "セッション sess-x を終了します")
	r := e.post(Prefix+"/revoke", url.Values{"step": {"execute"}, "kind": {"session"}, "subject": {"sess-x"}, "reason": {"端末紛失"}, "confirm": {token}})
	if r.Status != 200 {
		t.Fatalf("revoke session = %d", r.Status)
	}
	e.wantAdminRecord("revoke_session", "sess-x")

	// Everyone: the page warns that the admin's own session ends too.
	token, body = confirm(t, e, url.Values{"kind": {"all"}, "subject": {"ignored"}, "reason": {"全庁インシデント"}})
	contains(t, body, "全員のセッション", "あなた自身のセッションも終了します")
	r = e.post(Prefix+"/revoke", url.Values{"step": {"execute"}, "kind": {"all"}, "reason": {"全庁インシデント"}, "confirm": {token}})
	if r.Status != 200 {
		t.Fatalf("revoke all = %d\n%s", r.Status, r.Body)
	}
	if _, err := e.session.Verify(ctx, tok, ""); err == nil {
		t.Error("a session survived revoke all")
	}
	e.wantAdminRecord("revoke_all", "")

	// Bad kinds and subjects.
	for _, f := range []url.Values{
		{"step": {"confirm"}, "kind": {"planet"}, "subject": {"x"}, "reason": {"x"}},
		{"step": {"confirm"}, "kind": {"user"}, "subject": {""}, "reason": {"x"}},
		{"step": {"confirm"}, "kind": {"user"}, "subject": {"nobody"}, "reason": {"x"}},
		{"step": {"launch"}, "kind": {"all"}, "reason": {"x"}},
	} {
		if r := e.post(Prefix+"/revoke", f); r.Status != http.StatusBadRequest {
			t.Errorf("%v = %d; want 400", f, r.Status)
		}
	}
}

// Every action leaves an admin record naming the actor: one table over
// all of them, with the admin acting from a second session.
func TestEveryActionRecordsActor(t *testing.T) {
	e := newEnv(t)
	e.mustUser("alice", "山田 花子", "財務課")
	e.mustDevice("PC-9", "alice", store.DeviceRevoked)
	c := e.mustPasskey("alice", "鍵", 3)
	token, _ := confirm(t, e, url.Values{"kind": {"device"}, "subject": {"PC-8"}, "reason": {"r"}})
	actions := []struct {
		path, action, target string
		form                 url.Values
	}{
		{"/users", "user_add", "u2", url.Values{"id": {"u2"}}},
		{"/users/invite", "user_invite", "alice", url.Values{"id": {"alice"}}},
		{"/users/passkeys/delete", "passkey_delete", "alice", url.Values{"id": {"alice"}, "credential": {hexID(c.ID)}}},
		{"/users/disable", "user_disable", "alice", url.Values{"id": {"alice"}, "reason": {"r"}}},
		{"/users/enable", "user_enable", "alice", url.Values{"id": {"alice"}}},
		{"/devices/enable", "device_enable", "PC-9", url.Values{"id": {"PC-9"}, "reason": {"r"}}},
		{"/revoke", "revoke_device", "PC-8", url.Values{"step": {"execute"}, "kind": {"device"}, "subject": {"PC-8"}, "reason": {"r"}, "confirm": {token}}},
		{"/verify", "audit_verify", e.cfg.Audit.Dir, url.Values{}},
	}
	for _, a := range actions {
		r := e.post(Prefix+a.path, a.form)
		if r.Status >= 400 {
			t.Errorf("POST %s = %d", a.path, r.Status)
			continue
		}
		rec := e.wantAdminRecord(a.action, a.target)
		if rec.RequestID != e.lastRequestID() || rec.Event != "admin" || rec.Decision != "allow" {
			t.Errorf("%s: record request %q event %q decision %q", a.action, rec.RequestID, rec.Event, rec.Decision)
		}
	}
	if got := len(e.adminRecords()); got != len(actions) {
		t.Errorf("%d admin records for %d actions: %v", got, len(actions), summarise(e.adminRecords()))
	}
}
