package admin

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/store"
)

// untranslated finds a message key that reached a page untranslated.
var untranslated = regexp.MustCompile(`[>\s"(](nav|ov|err|dec|ev|user|tl|pol|cf|rv|dev|invite|audit|pager|done|note|status|enforced|back|col|confirm|revoked)\.[a-z_]+[a-z_.]*[<\s"]`)

func checkTranslated(t *testing.T, path, body string) {
	t.Helper()
	if m := untranslated.FindString(body); m != "" {
		t.Errorf("%s: untranslated message key %q", path, m)
	}
}

// seedDay writes a day of traffic: allowed, denied, step-up and
// shadow-mode decisions, authentication events, and a request with two
// records (decision and outcome) that must count once.
func seedDay(e *env) {
	e.seed(
		&audit.Record{Time: t0.Add(-2 * time.Hour), Event: audit.EventAuthn, Action: "login", User: "alice", Device: "PC-001", IP: "10.1.5.6", Zone: "chonai", Decision: "allow", Enforced: true, AMR: []string{"hwk", "uv"}},
		access(-110, "alice", "PC-001", "zaimu", "2", "allow", true),
		access(-100, "alice", "PC-001", "zaimu", "3B", "stepup", true, "stepup_required"),
		access(-90, "bob", "PC-002", "zaimu", "2", "deny", true, "zone_not_allowed"),
		access(-80, "bob", "PC-002", "zaimu", "2", "deny", true, "zone_not_allowed"),
		access(-70, "carol", "", "zaimu", "3B", "deny", true, "device_cert_required"),
		access(-60, "alice", "PC-001", "pilot", "2", "deny", false, "no_matching_rule"),
		access(-50, "alice", "PC-001", "pilot", "2", "deny", false, "no_matching_rule"),
	)
	// A sync-class request: decision record and outcome record, one request.
	r1 := access(-40, "alice", "PC-001", "zaimu", "3B", "allow", true)
	r2 := access(-40, "alice", "PC-001", "zaimu", "3B", "allow", true)
	r2.Status, r2.Bytes = 200, 512
	e.seed(r1, r2)
	// Yesterday's record, outside the 24 hours of the overview.
	e.seed(access(-60*30, "dave", "PC-009", "zaimu", "2", "deny", true, "outside_hours"))
}

func TestOverview(t *testing.T) {
	e := newEnv(t)
	seedDay(e)
	e.mustUser("alice", "山田 花子", "財務課", "財務")
	e.mustUser("bob", "鈴木 一郎", "税務課")
	e.mustPasskey("alice", "職場のPC", 1)
	e.mustPasskey("admin1", "管理PC", 2)
	e.mustDevice("PC-666", "bob", store.DeviceRevoked)
	r := e.get(Prefix + "/")
	if r.Status != 200 {
		t.Fatalf("GET / = %d\n%s", r.Status, r.Body)
	}
	checkTranslated(t, "/", r.Body)
	// 8 requests in the 24 hours (the two-record request counts once).
	contains(t, r.Body, "要求（24時間）", `<p class="big">8</p>`,
		// by class: class 2 allow 1, deny 4 (2 zone + 2 shadow); 3B allow 1, stepup 1, deny 1.
		"<tr><td>2</td><td>1</td><td>0</td><td>4</td><td>0</td><td>5</td></tr>",
		"<tr><td>3B</td><td>1</td><td>1</td><td>1</td><td>0</td><td>3</td></tr>",
		// top denial reasons (enforced only): zone twice, device cert once.
		"<tr><td>zone_not_allowed</td><td>2</td></tr>", "<tr><td>device_cert_required</td><td>1</td></tr>",
		// shadow mode would-denies per route.
		"<tr><td>pilot</td><td>2</td></tr>",
		// 2 of 3 enabled staff have a passkey.
		"66.7%", "有効な職員 3 人中 2 人がパスキーを登録済み",
		// trail health.
		`id="trail-status">改ざんなし`, `id="trail-writable">書き込み: 正常`,
		// charts as inline SVG with the classes' colours.
		"<svg", `class="seg-deny"`, `class="seg-allow"`, "<title>",
	)
	lacks(t, r.Body, "outside_hours") // yesterday
	if strings.Count(r.Body, "<svg") != 4 {
		t.Errorf("want 4 charts (class, hour, reasons, shadow); got %d", strings.Count(r.Body, "<svg"))
	}

	// The summary is reused for a minute, then read again.
	e.seed(access(1, "alice", "PC-001", "zaimu", "2", "allow", true))
	if r := e.get(Prefix + "/"); !strings.Contains(r.Body, `<p class="big">8</p>`) {
		t.Error("the summary was not reused within the minute")
	}
	e.clock.Advance(2 * time.Minute)
	if r := e.get(Prefix + "/"); !strings.Contains(r.Body, `<p class="big">9</p>`) {
		t.Error("the summary was not refreshed after a minute")
	}
}

func TestOverviewDetectsTampering(t *testing.T) {
	e := newEnv(t, WithVerifyEvery(time.Hour))
	seedDay(e)
	if r := e.get(Prefix + "/"); !strings.Contains(r.Body, "改ざんなし") {
		t.Fatal("a fresh trail is not reported intact")
	}
	// Edit a record on disk: bob's first denial becomes an allow.
	files, _ := filepath.Glob(filepath.Join(e.cfg.Audit.Dir, "*.jsonl"))
	if len(files) == 0 {
		entries, _ := os.ReadDir(e.cfg.Audit.Dir)
		t.Fatalf("no trail files; dir has %v", entries)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(`"decision":"deny"`))
	if i < 0 {
		t.Fatal("no deny record to edit")
	}
	b = append(b[:i:i], append([]byte(`"decision":"allo"`), b[i+len(`"decision":"deny"`):]...)...)
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	// The cached verdict stands until it is verified again.
	if r := e.get(Prefix + "/"); !strings.Contains(r.Body, "改ざんなし") {
		t.Error("the cached verification was not reused")
	}
	r := e.post(Prefix+"/verify", nil)
	if r.Status != http.StatusSeeOther {
		t.Fatalf("POST /verify = %d", r.Status)
	}
	r = e.get(r.Header.Get("Location"))
	contains(t, r.Body, "監査証跡を検証しました", `id="trail-status">改ざん・欠落を検出`)
	rec := e.wantAdminRecord("audit_verify", e.cfg.Audit.Dir)
	if !strings.HasPrefix(rec.Detail, "tampered: ") {
		t.Errorf("verify record detail %q; want the finding", rec.Detail)
	}
}

func TestAuditSearch(t *testing.T) {
	e := newEnv(t, WithPageSize(2))
	seedDay(e)
	t.Run("first visit shows the last 24 hours", func(t *testing.T) {
		r := e.get(Prefix + "/audit")
		checkTranslated(t, "/audit", r.Body)
		contains(t, r.Body, `name="since" type="datetime-local" value="2026-11-22T10:00"`, "<details>")
		lacks(t, r.Body, "dave")
	})
	t.Run("filters", func(t *testing.T) {
		q := url.Values{"user": {"bob"}, "decision": {"deny"}, "since": {"2026-11-20"}}
		r := e.get(Prefix + "/audit?" + q.Encode())
		contains(t, r.Body, "該当 2 件", "zone_not_allowed", `<a href="/.sekisho/admin/timeline?user=bob">bob</a>`, `name="since" type="datetime-local" value="2026-11-20T00:00"`)
		lacks(t, r.Body, "<strong>alice</strong>")
		r = e.get(Prefix + "/audit?" + url.Values{"route": {"pilot"}, "enforced": {"false"}, "since": {"2026-11-20"}}.Encode())
		contains(t, r.Body, "該当 2 件", "シャドー（記録のみ）")
		r = e.get(Prefix + "/audit?" + url.Values{"event": {"authn"}, "since": {"2026-11-20"}}.Encode())
		contains(t, r.Body, "該当 1 件", "login")
		r = e.get(Prefix + "/audit?" + url.Values{"class": {"3B"}, "zone": {"chonai"}, "device": {"PC-001"}, "since": {"2026-11-20"}}.Encode())
		contains(t, r.Body, "該当 3 件")
	})
	t.Run("paged newest first", func(t *testing.T) {
		q := url.Values{"user": {"alice"}, "event": {"access"}, "since": {"2026-11-20"}}
		r := e.get(Prefix + "/audit?" + q.Encode())
		// alice has 6 access records: pages of 2, newest (-40) first.
		contains(t, r.Body, "該当 6 件", "1 / 3 ページ", "新しい順に 1〜2 件目", `rel="next"`)
		if i, j := strings.Index(r.Body, "r-alice--40"), strings.Index(r.Body, "r-alice--110"); i < 0 || j >= 0 {
			t.Errorf("page 1 should hold the newest records only (have -40: %v, -110: %v)", i >= 0, j >= 0)
		}
		q.Set("page", "3")
		r = e.get(Prefix + "/audit?" + q.Encode())
		contains(t, r.Body, "3 / 3 ページ", "r-alice--110", "r-alice--100", `rel="prev"`)
		lacks(t, r.Body, `rel="next"`, "r-alice--40")
	})
	t.Run("bad input", func(t *testing.T) {
		for _, q := range []string{"since=yesterday", "decision=maybe", "enforced=perhaps", "event=x", "since=2026-11-23&until=2026-11-22", "user=" + strings.Repeat("x", 300)} {
			r := e.get(Prefix + "/audit?" + q)
			if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, `class="error"`) {
				t.Errorf("GET /audit?%.40s = %d; want 400 with a message", q, r.Status)
			}
		}
	})
}

func TestAuditCSV(t *testing.T) {
	e := newEnv(t)
	seedDay(e)
	q := url.Values{"user": {"bob"}, "since": {"2026-11-20"}}
	r := e.get(Prefix + "/audit.csv?" + q.Encode())
	if r.Status != 200 || r.Header.Get("Content-Type") != "text/csv; charset=utf-8" || !strings.Contains(r.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("CSV: %d %q %q", r.Status, r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"))
	}
	if !strings.HasPrefix(r.Body, "\uFEFF") {
		t.Error("CSV does not start with a UTF-8 BOM")
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(r.Body, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(audit.RecordColumns, ",") {
		t.Fatalf("CSV rows %d, header %v; want header and bob's 2 records", len(rows), rows[0])
	}
	if rows[1][4] != "bob" || rows[2][21] != "zone_not_allowed" {
		t.Errorf("CSV rows %v", rows[1:])
	}
	if !strings.Contains(r.Body, "\r\n") {
		t.Error("CSV lines do not end in CRLF")
	}
	rec := e.wantAdminRecord("audit_export", "csv")
	if !strings.Contains(rec.Detail, "user=bob") {
		t.Errorf("export record detail %q; want the filter", rec.Detail)
	}
}

func TestTimeline(t *testing.T) {
	e := newEnv(t)
	seedDay(e)
	e.mustUser("alice", "山田 花子", "財務課", "財務")
	if err := e.store.CreateSession(context.Background(), &store.Session{ID: "sess-alice", UserID: "alice", Device: "PC-001", IP: "10.1.5.6",
		CreatedAt: t0.Add(-2 * time.Hour), ExpiresAt: t0.Add(8 * time.Hour), LastSeen: t0}); err != nil {
		t.Fatal(err)
	}
	r := e.get(Prefix + "/timeline")
	contains(t, r.Body, "利用者IDまたは端末IDを入れると")
	r = e.get(Prefix + "/timeline?user=alice")
	if r.Status != 200 {
		t.Fatalf("timeline = %d", r.Status)
	}
	checkTranslated(t, "/timeline", r.Body)
	contains(t, r.Body, "利用者 alice の時系列", "山田 花子", "login", "r-alice--110", "r-alice--40", "sess-alice", "10.1.5.6", "PC-001",
		"作成者 admin1", `href="/.sekisho/admin/revoke?kind=user&amp;subject=alice"`,
		// 2 allow (the two-record request once), 1 stepup, 2 shadow denies, 1 authn
		"許可 2 · 再認証 1 · 拒否 2 · エラー 0 · 認証 1")
	lacks(t, r.Body, "r-bob-", "r-carol-")
	contains(t, r.Body, `href="/.sekisho/admin/audit.csv?since=2026-11-16T10%3A01&amp;until=2026-11-23T10%3A01&amp;user=alice"`)
	// Oldest first.
	if strings.Index(r.Body, "r-alice--110") > strings.Index(r.Body, "r-alice--40") {
		t.Error("timeline is not in time order")
	}
	r = e.get(Prefix + "/timeline?device=PC-002")
	contains(t, r.Body, "端末 PC-002 の時系列", "r-bob--90", "kind=device&amp;subject=PC-002")
	lacks(t, r.Body, "r-alice-")
	// A window that excludes everything.
	r = e.get(Prefix + "/timeline?user=alice&since=2026-11-01&until=2026-11-02")
	contains(t, r.Body, "この期間の記録はありません")
	r = e.get(Prefix + "/timeline?user=alice&since=nonsense")
	if r.Status != http.StatusBadRequest {
		t.Errorf("bad since = %d", r.Status)
	}
}

func TestPolicyPage(t *testing.T) {
	e := newEnv(t)
	e.mustUser("alice", "山田 花子", "財務課", "財務")
	r := e.get(Prefix + "/policy")
	checkTranslated(t, "/policy", r.Body)
	contains(t, r.Body, e.engine.Version(), "allow, role:admin, class:3A, admin", `id="L4"`)
	lacks(t, r.Body, "ファイルの内容は適用中のポリシーと異なります")

	q := url.Values{"user": {"alice"}, "route": {"zaimu"}, "method": {"GET"}, "path": {"/"}, "zone": {"chonai"}, "amr": {"hwk", "uv"}}
	r = e.get(Prefix + "/policy?" + q.Encode())
	contains(t, r.Body, `id="explanation"`, `<span class="dec dec-allow">allow</span>`, "policy.csv:4", "roles=[財務]")

	q.Set("zone", "external")
	r = e.get(Prefix + "/policy?" + q.Encode())
	contains(t, r.Body, `<span class="dec dec-deny">deny</span>`, "判定を変えるには", "zone=chonai")

	q.Set("zone", "chonai")
	q.Set("path", "/export/x")
	q.Set("auth_age", "30m")
	r = e.get(Prefix + "/policy?" + q.Encode())
	contains(t, r.Body, `<span class="dec dec-stepup">stepup</span>`)

	// The console itself, as the gateway decides it.
	r = e.get(Prefix + "/policy?" + url.Values{"user": {"admin1"}, "route": {"admin"}, "zone": {"chonai"}, "amr": {"hwk", "uv"}}.Encode())
	contains(t, r.Body, "class=3A action=admin", `<span class="dec dec-allow">allow</span>`)
	r = e.get(Prefix + "/policy?" + url.Values{"user": {"alice"}, "route": {"admin"}, "zone": {"chonai"}, "amr": {"hwk", "uv"}}.Encode())
	contains(t, r.Body, `<span class="dec dec-deny">deny</span>`)

	r = e.get(Prefix + "/policy?" + url.Values{"user": {"alice"}, "route": {"nosuch"}}.Encode())
	if r.Status != http.StatusBadRequest {
		t.Errorf("unknown route = %d; want 400", r.Status)
	}
	r = e.get(Prefix + "/policy?" + url.Values{"user": {"ghost"}, "route": {"zaimu"}, "device": {"PC-X"}}.Encode())
	contains(t, r.Body, "この利用者はストアにありません", "この端末は台帳にありません")

	// A policy file edited but not reloaded is flagged.
	if err := os.WriteFile(e.cfg.Policy.File, []byte(testPolicy+"allow, *, class:1, read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.get(Prefix + "/policy")
	contains(t, r.Body, "ファイルの内容は適用中のポリシーと異なります")
}

// Every page, in both languages, has every message translated.
func TestPagesTranslated(t *testing.T) {
	e := newEnv(t)
	seedDay(e)
	e.mustUser("alice", "山田 花子", "財務課", "財務")
	e.mustPasskey("alice", "職場のPC", 1)
	e.mustDevice("PC-001", "alice", store.DeviceActive)
	e.mustDevice("PC-666", "alice", store.DeviceRevoked)
	pages := []string{"/", "/audit", "/audit?since=2026-11-20&user=alice", "/timeline", "/timeline?user=alice", "/timeline?device=PC-001",
		"/users", "/users/view?id=alice", "/devices", "/revoke", "/revoke?kind=all", "/policy",
		"/policy?user=alice&route=zaimu&zone=external&amr=hwk", "/policy?user=ghost&route=admin&device=PC-9", "/nope", "/audit?since=bad"}
	for _, lang := range []string{"ja", "en"} {
		for _, p := range pages {
			r := e.do("GET", Prefix+p, nil, map[string]string{"Accept-Language": lang})
			checkTranslated(t, lang+" "+p, r.Body)
			if !strings.Contains(r.Body, `<html lang="`+lang+`">`) {
				t.Errorf("%s %s: not in %s", lang, p, lang)
			}
		}
	}
	r := e.do("GET", Prefix+"/", nil, map[string]string{"Accept-Language": "en"})
	contains(t, r.Body, "Decisions by asset class", "Class 3B", "Top denial reasons", "Intact", "Shadow mode: would have been denied, by route")
	token, _ := confirm(t, e, url.Values{"kind": {"user"}, "subject": {"alice"}, "reason": {"x"}})
	r = e.do("POST", Prefix+"/revoke", url.Values{"csrf": {e.console.csrfToken(e.info.SessionID)}, "step": {"execute"}, "kind": {"user"}, "subject": {"alice"}, "reason": {"x"}, "confirm": {token}},
		map[string]string{"Sec-Fetch-Site": "same-origin", "Accept-Language": "en"})
	contains(t, r.Body, "Revoked: user alice")
	checkTranslated(t, "en revoked", r.Body)
}

// An unwritable trail shows on the overview, and an action whose record
// cannot be written is reported as failed, not as done.
func TestTrailNotWritable(t *testing.T) {
	e := newEnv(t)
	e.mustUser("alice", "山田 花子", "財務課")
	if err := e.trail.Close(); err != nil {
		t.Fatal(err)
	}
	r := e.get(Prefix + "/")
	contains(t, r.Body, `id="trail-writable">書き込み: 失敗中`)
	r = e.post(Prefix+"/users/enable", url.Values{"id": {"alice"}})
	if r.Status != http.StatusInternalServerError || !strings.Contains(r.Body, "操作は完了していない可能性があります") {
		t.Errorf("action with an unwritable trail = %d; want 500 saying so", r.Status)
	}
}

// TestListsArePaged: 250 staff and 250 devices are shown 100 per page,
// with the position, links that keep the filter, and out-of-range pages
// clamped; the passkey share stays over all staff.
func TestListsArePaged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 250 {
		id := fmt.Sprintf("p%03d", i)
		if err := e.store.CreateUser(ctx, &store.User{ID: id, DisplayName: "職員", Department: "総務課"}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := e.store.AddCredential(ctx, &store.Credential{ID: []byte(id), UserID: id, PublicKey: []byte{1}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.store.UpsertDevice(ctx, &store.Device{ID: fmt.Sprintf("PC-P%03d", i), Owner: id, Status: store.DeviceActive}); err != nil {
			t.Fatal(err)
		}
	}
	rows := func(body, table string) int {
		_, after, _ := strings.Cut(body, `id="`+table+`"`)
		_, after, _ = strings.Cut(after, "<tbody>")
		tbody, _, _ := strings.Cut(after, "</tbody>")
		return strings.Count(tbody, "<tr")
	}
	r := e.get(Prefix + "/users?q=p")
	if n := rows(r.Body, "users"); n != 100 {
		t.Errorf("users page 1: %d rows, want 100", n)
	}
	contains(t, r.Body, "250 件中 1〜100 件", "1 / 3 ページ", `href="/.sekisho/admin/users?page=2&amp;q=p"`, "p000", "p099")
	lacks(t, r.Body, "p100", `rel="prev"`)
	r = e.get(Prefix + "/users?q=p&page=3")
	if n := rows(r.Body, "users"); n != 50 {
		t.Errorf("users page 3: %d rows, want 50", n)
	}
	contains(t, r.Body, "250 件中 201〜250 件", "p249", `rel="prev"`)
	lacks(t, r.Body, `rel="next"`)
	if got := e.get(Prefix + "/users?q=p&page=99").Body; !strings.Contains(got, "250 件中 201〜250 件") {
		t.Error("page 99 of 3 is not clamped to the last page")
	}
	if got := e.get(Prefix + "/users?q=p&page=-5").Body; !strings.Contains(got, "250 件中 1〜100 件") {
		t.Error("page -5 is not clamped to the first page")
	}
	// The share of staff with a passkey counts everyone, not one page.
	staff, err := e.store.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	withPasskey := 0
	for _, u := range staff {
		if creds, _ := e.store.ListCredentials(ctx, u.ID); len(creds) > 0 && !u.Disabled {
			withPasskey++
		}
	}
	contains(t, e.get(Prefix+"/users?q=p&page=2").Body, fmt.Sprintf("有効な職員 %d 人中 %d 人がパスキーを登録済み", len(staff), withPasskey))
	if withPasskey < 125 {
		t.Errorf("%d staff with a passkey, want at least the 125 made here", withPasskey)
	}
	r = e.get(Prefix + "/devices?q=PC-P")
	if n := rows(r.Body, "devices"); n != 100 {
		t.Errorf("devices page 1: %d rows, want 100", n)
	}
	contains(t, r.Body, "250 件中 1〜100 件", `href="/.sekisho/admin/devices?page=2&amp;q=PC-P"`)
}
