package directory_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/directory"
	"github.com/sekisho/sekisho/policy"
	"github.com/sekisho/sekisho/store"
	"github.com/sekisho/sekisho/store/storetest"
)

const transferPolicy = `# 所属ごとの業務システム
allow, dept:財務課, route:zaimu,   read|write
allow, dept:福祉課, route:fukushi, read|write
allow, role:財務,   route:zaimu,   export
group, role:財務管理者, role:財務
`

func transferConfig(t *testing.T) *config.Config {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.csv")
	if err := os.WriteFile(file, []byte(transferPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	return &config.Config{
		Path:    filepath.Join(dir, "sekisho.yaml"),
		Classes: map[string]config.Class{"2": {Require: []string{"passkey"}}},
		Routes: []config.Route{
			{Name: "zaimu", Segment: "lgwan", Class: "2"},
			{Name: "fukushi", Segment: "lgwan", Class: "2"},
		},
		Zones:     config.Zones{{Name: "chonai"}},
		Policy:    config.Policy{File: file},
		Directory: config.Directory{Roles: []string{"福祉"}},
	}
}

// The April transfer: sato moves from 財務課 to 福祉課. On the very next
// decision, built from the store as the gateway builds it, the 福祉 route
// is allowed and the 財務 route denied.
func TestTransferChangesNextDecision(t *testing.T) {
	cfg := transferConfig(t)
	now := time.Date(2027, 4, 1, 9, 0, 0, 0, jst)
	engine, err := policy.New(cfg, policy.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.SQLite(t)
	ctx := t.Context()
	seed(t, st, &store.User{ID: "sato", DisplayName: "佐藤 花子", Department: "財務課", Roles: []string{"財務"}})

	decide := func(route string) policy.Effect {
		u, err := st.GetUser(ctx, "sato") // the gateway reads the user on every request
		if err != nil {
			t.Fatal(err)
		}
		tg, err := policy.Resolve(cfg, route, "GET", "/")
		if err != nil {
			t.Fatal(err)
		}
		return engine.Decide(&policy.Request{
			User: u.ID, Roles: u.Roles, Department: u.Department, Authenticated: true,
			Route: tg.Route, Class: tg.Class, Segment: tg.Segment, Action: tg.Action,
			Zone: "chonai", AMR: []string{"hwk", "uv"}, AuthTime: now.Add(-time.Minute), Time: now,
		}).Effect
	}
	if z, f := decide("zaimu"), decide("fukushi"); z != policy.Allow || f != policy.Deny {
		t.Fatalf("before the transfer: zaimu %v, fukushi %v; want allow, deny", z, f)
	}

	roles, err := directory.KnownRoles(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src, err := directory.ParseCSV("jinji.csv", []byte(jaHeader+"sato,佐藤 花子,福祉課,福祉,有効,\n"), directory.CSVOptions{Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := directory.Plan(ctx, st, src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := directory.Apply(ctx, st, cs); err != nil {
		t.Fatal(err)
	}
	if z, f := decide("zaimu"), decide("fukushi"); z != policy.Deny || f != policy.Allow {
		t.Errorf("after the transfer: zaimu %v, fukushi %v; want deny, allow", z, f)
	}
}

// Known roles are directory.roles plus every role the policy names, in
// rules and on both sides of group lines.
func TestKnownRoles(t *testing.T) {
	cfg := transferConfig(t)
	roles, err := directory.KnownRoles(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := roles.Sorted()
	want := []string{"福祉", "財務", "財務管理者"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("KnownRoles = %v, want %v", got, want)
	}
	cfg.Policy.File = filepath.Join(t.TempDir(), "missing.csv")
	if roles, err := directory.KnownRoles(cfg); err != nil || len(roles) != 1 {
		t.Errorf("without a policy file: %v, %v; want only directory.roles", roles, err)
	}
	cfg.Directory.Roles = nil
	if _, err := directory.KnownRoles(cfg); err == nil {
		t.Error("no policy and no directory.roles: want an error")
	}
}
