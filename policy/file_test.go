package policy

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string // substrings, one per error line, in order
	}{
		{"unknown kind", "alow, *, class:2, read\n", []string{`policy.csv:1: 種別 "alow" は使えません`}},
		{"too few fields", "# c\nallow, *, class:2\n", []string{"policy.csv:2: 規則は「効果, 主体, 対象, 操作, 条件」の4〜5項目です"}},
		{"bad action", "allow, *, class:2, delete\n", []string{`policy.csv:1: 操作 (action) "delete"`}},
		{"bad object", "allow, *, zaimu, read\n", []string{`policy.csv:1: 対象 (object) "zaimu"`}},
		{"unknown route", "allow, *, route:zaimuu, read\n", []string{`policy.csv:1: 対象 "route:zaimuu" は設定にありません`}},
		{"unknown class", "allow, *, class:4, read\n", []string{`policy.csv:1: 対象 "class:4" は設定にありません`}},
		{"undefined condition", "allow, *, class:2, read, 庁内\n", []string{`policy.csv:1: 条件 "庁内" が定義されていません`}},
		{"unknown zone in condition", "condition, x, zone=honcho\n", []string{`policy.csv:1: 条件 "x": zone "honcho" は設定にありません`}},
		{"bad hours", "condition, x, hours=8-17\n", []string{`policy.csv:1: 条件 "x": "hours=8-17": 時間帯は HH:MM-HH:MM です`}},
		{"empty hours", "condition, x, hours=09:00-09:00\n", []string{"開始と終了が同じです"}},
		{"bad test key", "condition, x, weather=fine\n", []string{`キー "weather" は使えません`}},
		{"duplicate condition", "condition, x, zone=chonai\ncondition, x, zone=telework\n", []string{`policy.csv:2: 条件 "x" は 1 行目で定義済みです`}},
		{"stepup without auth test", "condition, c, zone=chonai\nstepup, *, class:2, read, c\n", []string{"policy.csv:2: stepup 規則には amr か max_auth_age"}},
		{"group cycle", "group, role:a, role:b\ngroup, role:b, role:a\n", []string{"グループが循環しています"}},
		{"self group", "group, role:a, role:a\n", []string{"policy.csv:1: \"role:a\" が自分自身を親にしています"}},
		{"bad holiday", "holiday, 2026-02-30\n", []string{`policy.csv:1: 日付 "2026-02-30" は YYYY-MM-DD ではありません`}},
		{"not utf-8", "allow, \xff, class:2, read\n", []string{"policy.csv: UTF-8 ではありません"}},
		{"syntax and meaning errors together, in line order",
			"allow, *, route:nosuch, read\nallw, *, class:2, read\n",
			[]string{`policy.csv:1: 対象 "route:nosuch"`, `policy.csv:2: 種別 "allw"`}},
	}
	var deep strings.Builder
	for i := 0; i <= MaxGroupDepth; i++ {
		fmt.Fprintf(&deep, "group, role:l%d, role:l%d\n", i, i+1)
	}
	tests = append(tests, struct {
		name, text string
		want       []string
	}{"group chain deeper than Casbin follows", deep.String(), []string{"policy.csv:1: グループの継承が深すぎます: role:l0 から 11 段（上限 10 段）"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compile(sampleConfig("policy.csv"), "policy.csv", []byte(tt.text), tokyo(t), wedMorning)
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	f, err := Parse("p.csv", []byte("\ufeff# comment\r\nallow , role:a|dept:総務課 , route:x|class:2 , read|write , c1 & !c2   # trailing comment\r\n"+
		"condition, c1, zone=chonai|telework, days=月-金\ncondition, c2, amr=hwk+uv\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := f.Rules[0]
	got := []any{r.Line, r.Effect, r.Subjects, r.Objects, r.Actions, r.Conds, r.Pos()}
	want := []any{2, Allow, []string{"role:a", "dept:総務課"}, []string{"route:x", "class:2"}, []string{"read", "write"},
		[]CondRef{{Name: "c1"}, {Name: "c2", Negate: true}}, "p.csv:2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rule (-want +got):\n%s", diff)
	}
	c1 := f.Conditions[0]
	if len(c1.Tests) != 2 || !c1.Tests[1].days[time.Monday] || c1.Tests[1].days[time.Saturday] {
		t.Errorf("condition c1 parsed wrong: %+v", c1.Tests)
	}
}

func TestExplainChanges(t *testing.T) {
	e, _ := newEngine(t, testPolicy)
	x := e.Explain(req(func(r *Request) { r.Zone = "telework"; r.Action = "write" }))
	if x.Decision.Effect != Deny {
		t.Fatalf("effect %s", x.Decision.Effect)
	}
	wantRules := []RuleTrace{{Rule: "policy.csv:9", Text: "allow,  role:zaimu,  route:zaimu, read|write, chonai_only", Effect: Allow, Result: "not_applied", Failed: []string{"chonai_only: zone=chonai"}}}
	if diff := cmp.Diff(wantRules, x.Rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"*", "alice", "role:zaimu"}, x.Subjects); diff != "" {
		t.Errorf("subjects (-want +got):\n%s", diff)
	}
	want := []Change{{Ja: "次のようにすれば許可されます: 接続元ゾーンを chonai にする", En: "allowed after connecting from zone chonai", Rule: "policy.csv:9"}}
	if diff := cmp.Diff(want, x.Changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}

	// A class requirement: either zone the class allows.
	x = e.Explain(req(func(r *Request) { r.Route = "jinji"; r.Class = "3B"; r.Zone = "telework" }))
	want = []Change{
		{Ja: "次のようにすれば許可されます: 接続元ゾーンを chonai にする", En: "allowed after connecting from zone chonai", Rule: "policy.csv:15"},
		{Ja: "次のようにすれば許可されます: 接続元ゾーンを mynumber にする", En: "allowed after connecting from zone mynumber", Rule: "policy.csv:15"},
	}
	if diff := cmp.Diff(want, x.Changes); diff != "" {
		t.Errorf("class changes (-want +got):\n%s", diff)
	}

	// Two things at once: a 3B export from telework without a device
	// needs the office and a device.
	x = e.Explain(req(func(r *Request) { r.Action = "export"; r.Class = "3B"; r.Zone = "telework"; r.Device = "" }))
	want = []Change{{Ja: "次のようにすれば許可されます: 接続元ゾーンを chonai にする、本人に割り当てた登録済みの端末（端末証明書あり）を使う",
		En: "allowed after connecting from zone chonai and using a registered device with a certificate, assigned to the user", Rule: "policy.csv:11"}}
	if diff := cmp.Diff(want, x.Changes); diff != "" {
		t.Errorf("two changes (-want +got):\n%s", diff)
	}

	// Outside office hours: a working-day morning.
	x = e.Explain(req(func(r *Request) {
		r.User, r.Department, r.Route, r.Action = "u1", "総務課", "groupware", "write"
		r.Time = time.Date(2026, 4, 29, 10, 0, 0, 0, tokyo(t)) // 昭和の日 (a holiday in the policy)
		r.AuthTime = r.Time
	}))
	if len(x.Changes) == 0 || !strings.Contains(x.Changes[0].Ja, "2026-04-30 10:00") {
		t.Errorf("hours changes = %+v", x.Changes)
	}

	// Nothing grants it: the rule-based hint says a rule is missing.
	x = e.Explain(req(func(r *Request) { r.Action = "admin"; r.Class = "3A" }))
	if len(x.Changes) != 1 || !strings.Contains(x.Changes[0].Ja, "規則を追加") {
		t.Errorf("no-rule changes = %+v", x.Changes)
	}
	// An allow has nothing to change.
	if x := e.Explain(req(nil)); len(x.Changes) != 0 {
		t.Errorf("allow has changes: %+v", x.Changes)
	}
}

// TestWatch: writing the file reloads it; a broken write keeps the policy.
func TestWatch(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e, cfg := newEngine(t, testPolicy)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Watch(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	v1 := e.Version()
	r := req(nil)
	// Give the watcher a moment to start, then rewrite until it notices.
	deadline := time.Now().Add(5 * time.Second)
	for e.Decide(r).Effect != Deny {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not reload the changed file")
		}
		if err := os.WriteFile(cfg.Policy.File, []byte(strings.Replace(testPolicy, "deny,   mallory", "deny,   alice", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if e.Version() == v1 {
		t.Error("version unchanged")
	}
	v2 := e.Version()

	// Saving the same text again (a touch) does not reload.
	reloads := testutil.ToFloat64(e.reloads.WithLabelValues("ok"))
	if err := os.WriteFile(cfg.Policy.File, []byte(strings.Replace(testPolicy, "deny,   mallory", "deny,   alice", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if got := testutil.ToFloat64(e.reloads.WithLabelValues("ok")); got != reloads {
		t.Errorf("an unchanged file was reloaded (%v reloads, was %v)", got, reloads)
	}

	// An editor's save: write a temporary file, rename it over the policy.
	tmp := cfg.Policy.File + ".swp"
	if err := os.WriteFile(tmp, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, cfg.Policy.File); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for e.Decide(r).Effect != Allow {
		if time.Now().After(deadline) {
			t.Fatal("a rename over the policy file was not reloaded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	v2 = e.Version()

	if err := os.WriteFile(cfg.Policy.File, []byte("broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if e.Version() != v2 || e.Decide(r).Rule != "policy.csv:9" {
		t.Errorf("a broken file replaced the policy")
	}
}

// TestGroupDepthLimit: a chain exactly as deep as allowed is followed to
// its end by Casbin's role manager.
func TestGroupDepthLimit(t *testing.T) {
	var b strings.Builder
	fmt.Fprintf(&b, "group, alice, role:l1\n")
	for i := 1; i < MaxGroupDepth; i++ {
		fmt.Fprintf(&b, "group, role:l%d, role:l%d\n", i, i+1)
	}
	fmt.Fprintf(&b, "allow, role:l%d, route:zaimu, read\n", MaxGroupDepth)
	e, _ := newEngine(t, b.String())
	if d := e.Decide(req(nil)); d.Effect != Allow {
		t.Fatalf("a %d-level chain: %s %s %v", MaxGroupDepth, d.Effect, d.Rule, d.Reasons)
	}
}
