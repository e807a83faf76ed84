package policy_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/policy"
)

func Example() {
	dir, _ := os.MkdirTemp("", "policy-example")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "policy.csv")
	os.WriteFile(file, []byte(`
condition, 庁内,     zone=chonai
condition, 新しいUV, amr=hwk+uv max_auth_age=1h
allow,  *,         class:2,     read|write, 庁内
stepup, role:財務, route:zaimu, export,     庁内 & 新しいUV
`), 0o600)

	cfg := &config.Config{
		Classes: map[string]config.Class{
			"2":  {Require: []string{"passkey"}},
			"3B": {MaxAuthAge: time.Hour, Require: []string{"passkey_uv", "device_cert"}, Audit: "sync"},
		},
		Routes: []config.Route{{Name: "zaimu", Segment: "lgwan", Class: "2",
			Paths: []config.PathRule{{Prefix: "/export", Class: "3B", Action: "export"}}}},
		Zones:  config.Zones{{Name: "chonai"}},
		Policy: config.Policy{File: file},
	}
	e, err := policy.New(cfg)
	if err != nil {
		log.Fatal(err)
	}

	now := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
	t, _ := policy.Resolve(cfg, "zaimu", "GET", "/export/2026.csv")
	req := &policy.Request{
		User: "sato", Roles: []string{"財務"}, Authenticated: true,
		Route: t.Route, Class: t.Class, Segment: t.Segment, Action: t.Action,
		Zone: "chonai", AMR: []string{"hwk", "uv"}, AuthTime: now.Add(-2 * time.Hour),
		Device: "pc-0101", Time: now,
	}
	d := e.Decide(req)
	fmt.Println(d.Effect, d.Rule, d.Reasons, d.AuditSync)
	fmt.Println(d.Reasons[1].Message("ja"))

	req.AuthTime = now.Add(-10 * time.Minute)
	d = e.Decide(req)
	fmt.Println(d.Effect, d.Rule)
	// Output:
	// stepup policy.csv:5 [stepup_required auth_too_old] true
	// パスキーで再認証してください
	// allow policy.csv:5
}
