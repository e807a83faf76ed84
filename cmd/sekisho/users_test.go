package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/store"
)

// TestUsersDisableRevokesSessions checks what the script cannot see: that
// disabling a user stores a user revocation, which every replica's session
// manager applies within a second.
func TestUsersDisableRevokesSessions(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sekisho.yaml")
	yaml := `server:
  tls: {cert: server.pem, key: server-key.pem}
store: {driver: sqlite, dsn: sekisho.db}
webauthn: {rp_id: gw.example.lg.jp}
routes:
  - {name: zaimu, host: zaimu.gw.example.lg.jp, upstream: "http://10.2.0.10:8080", segment: lgwan, class: "2"}
`
	for name, body := range map[string]string{"sekisho.yaml": yaml, "server.pem": "x", "server-key.pem": "x"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append(args, "--config", cfg))
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("sekisho %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	run("users", "add", "--id", "yamada", "--name", "山田 太郎")
	run("users", "disable", "--id", "yamada", "--reason", "異動")

	st, err := store.Open(context.Background(), "sqlite", filepath.Join(dir, "sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	revs, err := st.RevocationsSince(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 1 || revs[0].Kind != store.RevokeUser || revs[0].Subject != "yamada" || revs[0].Reason != "異動" || !strings.HasPrefix(revs[0].By, "cli:") {
		t.Fatalf("revocations after disable: %+v", revs)
	}
	u, err := st.GetUser(context.Background(), "yamada")
	if err != nil || !u.Disabled {
		t.Fatalf("user after disable: %+v, %v", u, err)
	}
}
