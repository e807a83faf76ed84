package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sekisho/sekisho/store/storetest"
)

func newPGPolicy(t *testing.T) *PGPolicy {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), storetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	p := NewPGPolicy(pool)
	if err := p.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := p.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	return p
}

func TestPGPolicyPushAndLoad(t *testing.T) {
	ctx := t.Context()
	p := newPGPolicy(t)
	e, cfg := newEngine(t, testPolicy)
	if v, err := p.Latest(ctx); err != nil || v != nil {
		t.Fatalf("Latest on an empty table = %v, %v; want nil, nil", v, err)
	}

	// A policy that does not load is refused with its line, and nothing is stored.
	_, err := p.Push(ctx, cfg, "policy.csv", []byte("allow, *, route:nosuch, read\n"), "tanaka")
	if err == nil || !strings.Contains(err.Error(), "policy.csv:1") {
		t.Fatalf("Push of a bad policy: err = %v, want one naming policy.csv:1", err)
	}
	if n, _ := p.LatestVersion(ctx); n != 0 {
		t.Fatalf("a refused policy was stored as version %d", n)
	}

	v1, err := p.Seed(ctx, cfg, "policy.csv", []byte(testPolicy), "seed:gw-a")
	if err != nil || v1.Version != 1 {
		t.Fatalf("Seed = %+v, %v; want version 1", v1, err)
	}
	// A second replica starting with another file does not publish it.
	other := strings.Replace(testPolicy, "deny,   mallory,     *,           *\n", "", 1)
	if _, err := p.Seed(ctx, cfg, "policy.csv", []byte(other), "seed:gw-b"); !errors.Is(err, ErrSeeded) {
		t.Fatalf("second Seed: err = %v, want ErrSeeded", err)
	}
	if _, err := p.Push(ctx, cfg, "policy.csv", []byte(testPolicy), "tanaka"); !errors.Is(err, ErrSamePolicy) {
		t.Fatalf("pushing the same text again: err = %v, want ErrSamePolicy", err)
	}
	// Version 2 drops "everyone may read class 2".
	stricter := strings.Replace(testPolicy, "allow,  *,           class:2,     read\n", "", 1)
	v2, err := p.Push(ctx, cfg, "policy.csv", []byte(stricter), "suzuki")
	if err != nil || v2.Version != 2 {
		t.Fatalf("Push = %+v, %v; want version 2", v2, err)
	}

	bob := &Request{User: "bob", Authenticated: true, Route: "groupware", Class: "2", Segment: "lgwan",
		Action: "read", Mode: "enforce", Zone: "chonai", AMR: []string{"hwk", "uv"}, AuthTime: time.Now(), Time: time.Now()}
	if d := e.Decide(bob); d.Effect != Allow {
		t.Fatalf("before loading version 2: %v, want allow", d.Effect)
	}
	latest, err := p.Latest(ctx)
	if err != nil || latest.Version != 2 || latest.PushedBy != "suzuki" || string(latest.Text) != stricter {
		t.Fatalf("Latest = %+v, %v", latest, err)
	}
	if err := e.LoadText(latest.Name, latest.Text); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(bob); d.Effect != Deny {
		t.Fatalf("after loading version 2: %v, want deny", d.Effect)
	}
	// The text in force (what the console shows) is version 2's, not the file's.
	v2version, text := e.Text()
	if string(text) != stricter || v2version != e.Version() {
		t.Fatalf("Text() = %q, %q; want version 2's text and %q", v2version, text, e.Version())
	}
	// A text that does not load keeps version 2 in force.
	if err := e.LoadText("policy.csv", []byte("allow, *, route:nosuch, read\n")); err == nil {
		t.Fatal("LoadText accepted a bad policy")
	}
	if d := e.Decide(bob); d.Effect != Deny {
		t.Fatalf("after a refused text: %v, want deny (version 2 kept)", d.Effect)
	}
	if version, text := e.Text(); string(text) != stricter || version != v2version {
		t.Fatalf("after a refused text, Text() = %q, %q; want version 2's", version, text)
	}
}

func TestPGAdapterFeedsCasbin(t *testing.T) {
	ctx := t.Context()
	p := newPGPolicy(t)
	_, cfg := newEngine(t, testPolicy)
	if _, err := p.Push(ctx, cfg, "policy.csv", []byte(testPolicy), "tanaka"); err != nil {
		t.Fatal(err)
	}
	m, err := model.NewModelFromString(ModelText())
	if err != nil {
		t.Fatal(err)
	}
	enf, err := casbin.NewEnforcer(m, p.Adapter(ctx))
	if err != nil {
		t.Fatal(err)
	}
	roles, err := enf.GetImplicitRolesForUser("alice")
	if err != nil || len(roles) != 1 || roles[0] != "role:zaimu" {
		t.Fatalf("alice's roles from the postgres adapter = %v, %v", roles, err)
	}
	pol, _ := enf.GetPolicy()
	if len(pol) == 0 {
		t.Fatal("no policy lines loaded from postgres")
	}
	if err := enf.SavePolicy(); err == nil {
		t.Fatal("SavePolicy succeeded on a read-only adapter")
	}
}
