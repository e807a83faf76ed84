package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"golang.org/x/text/encoding/japanese"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/directory/ldaptest"
	"github.com/sekisho/sekisho/store"
)

// importEnv is a configuration with a SQLite store, an audit trail and a
// policy naming the roles 財務 and 福祉, all in a temporary directory.
func importEnv(t *testing.T) (dir, cfgPath string) {
	dir = t.TempDir()
	cfgPath = filepath.Join(dir, "sekisho.yaml")
	files := map[string]string{
		"sekisho.yaml": "server: {http_listen: \"127.0.0.1:0\"}\nstore: {dsn: data/sekisho.db}\naudit: {dir: data/audit}\ndirectory:\n  roles: [管理者]\n  keep: [admin]\n",
		"policy.csv":   "allow, role:財務, *, read\nallow, role:福祉, *, read\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), "sqlite", cfg.Store.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, u := range []*store.User{
		{ID: "admin", DisplayName: "管理者", Roles: []string{"管理者"}},
		{ID: "sato", DisplayName: "佐藤 花子", Department: "財務課", Roles: []string{"財務"}},
		{ID: "suzuki", DisplayName: "鈴木 一郎", Department: "福祉課", Roles: []string{"福祉"}},
	} {
		if err := st.CreateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	return dir, cfgPath
}

// runUsers runs `sekisho users ARGS…` through a root built like main's.
func runUsers(t *testing.T, args ...string) (stdout, stderr string, err error) {
	root := &cobra.Command{Use: "sekisho", SilenceUsage: true, SilenceErrors: true}
	users := &cobra.Command{Use: "users"}
	users.AddCommand(newUsersImportCmd(), newUsersSyncCmd(), newUsersPendingCmd())
	root.AddCommand(users)
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"users"}, args...))
	err = root.ExecuteContext(t.Context())
	return out.String(), errb.String(), err
}

func readUsers(t *testing.T, dir string) string {
	st, err := store.Open(t.Context(), "sqlite", filepath.Join(dir, "data/sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	us, err := st.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, u := range us {
		b.WriteString(u.ID + " " + u.Department + " " + strings.Join(u.Roles, ";"))
		if u.Disabled {
			b.WriteString(" disabled")
		}
		b.WriteString("\n")
	}
	return b.String()
}

const transferCSV = "職員番号,氏名,所属,ロール,状態\nsato,佐藤 花子,福祉課,福祉,有効\nyamada,山田 太郎,財務課,財務,有効\n"

func TestUsersImportDryRunThenApply(t *testing.T) {
	dir, cfgPath := importEnv(t)
	sjis, err := japanese.ShiftJIS.NewEncoder().Bytes([]byte(transferCSV))
	if err != nil {
		t.Fatal(err)
	}
	csvPath := filepath.Join(dir, "jinji.csv")
	if err := os.WriteFile(csvPath, sjis, 0o600); err != nil {
		t.Fatal(err)
	}
	before := readUsers(t, dir)

	out, _, err := runUsers(t, "import", "--config", cfgPath, "--full", csvPath)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	for _, want := range []string{
		"取込計画 (import plan): " + csvPath + " [全件 full]",
		"~ 変更 change sato: 所属 department: 財務課 → 福祉課, ロール roles: 財務 → 福祉",
		"- 無効化 disable suzuki",
		"+ 追加 add yamada",
		"= 維持 kept admin",
		"確認のみです。反映するには --apply を付けて実行してください",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if got := readUsers(t, dir); got != before {
		t.Errorf("dry run changed the store:\n%s", got)
	}

	out, _, err = runUsers(t, "import", "--config", cfgPath, "--full", "--apply", "--encoding", "sjis", csvPath)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if !strings.Contains(out, "反映しました (applied): 追加 add 1, 変更 change 1, 無効化 disable 1, 有効化 enable 0, 予約 scheduled 0; セッション遮断 sessions revoked: 1") {
		t.Errorf("apply output:\n%s", out)
	}
	want := "admin  管理者\nsato 福祉課 福祉\nsuzuki 福祉課 福祉 disabled\nyamada 財務課 財務\n"
	if got := readUsers(t, dir); got != want {
		t.Errorf("users after apply:\n%s\nwant\n%s", got, want)
	}
	recs, _, err := audit.QueryAll(filepath.Join(dir, "data/audit"), audit.Filter{Event: audit.EventAdmin})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action+" "+r.Target)
		if !strings.HasPrefix(r.User, "cli:") {
			t.Errorf("record user %q, want the operator", r.User)
		}
	}
	if got := strings.Join(actions, ", "); got != "user_change sato, user_disable suzuki, user_add yamada" {
		t.Errorf("audit actions: %s", got)
	}
	if v := runAuditVerify(t, filepath.Join(dir, "data/audit")); v != nil {
		t.Errorf("audit verify: %v", v)
	}
}

// runAuditVerify checks the trail with the public half of its key.
func runAuditVerify(t *testing.T, dir string) error {
	jwks, err := audit.PublicJWKS(filepath.Join(dir, "audit.key"))
	if err != nil {
		return err
	}
	keys, err := audit.ParsePublicKeys(jwks)
	if err != nil {
		return err
	}
	res, err := audit.Verify(dir, keys)
	if err != nil {
		return err
	}
	return res.Err()
}

func TestUsersImportBadFileAppliesNothing(t *testing.T) {
	dir, cfgPath := importEnv(t)
	csvPath := filepath.Join(dir, "bad.csv")
	text := transferCSV + "ito,伊藤,税務課,税務,有効\nsato,佐藤,財務課,財務,有効\n"
	if err := os.WriteFile(csvPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	before := readUsers(t, dir)
	_, stderr, err := runUsers(t, "import", "--config", cfgPath, "--apply", csvPath)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err = %v, want exit 1", err)
	}
	for _, want := range []string{
		"誤りがあるため何も反映していません",
		csvPath + `:4: ロール: ロール "税務" は定義されていません`,
		csvPath + ":5: 職員番号: 職員番号 sato が 2 行目と重複しています",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if got := readUsers(t, dir); got != before {
		t.Errorf("store changed:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "data/audit")); !os.IsNotExist(err) {
		t.Errorf("audit trail opened for a bad file: %v", err)
	}
}

func TestUsersSyncNeedsLDAP(t *testing.T) {
	_, cfgPath := importEnv(t)
	_, _, err := runUsers(t, "sync", "--config", cfgPath)
	if err == nil || !strings.Contains(err.Error(), "directory.ldap.url is not set") {
		t.Errorf("sync without ldap settings: %v", err)
	}
}

// users sync against a real slapd through StartTLS: dry run, then apply.
func TestUsersSyncLDAP(t *testing.T) {
	s := ldaptest.Start(t)
	dir, cfgPath := importEnv(t)
	l := s.Settings()
	yaml := "server: {http_listen: \"127.0.0.1:0\"}\nstore: {dsn: data/sekisho.db}\naudit: {dir: data/audit}\n" +
		"directory:\n  roles: [管理者]\n  keep: [admin]\n  ldap:\n" +
		"    url: " + l.URL + "\n    start_tls: true\n    ca: " + l.CA + "\n" +
		"    bind_dn: " + l.BindDN + "\n    bind_password_file: " + l.BindPasswordFile + "\n" +
		"    base_dn: " + l.BaseDN + "\n    disabled_filter: \"" + l.DisabledFilter + "\"\n    groups:\n"
	for dn, roles := range l.Groups {
		yaml += "      \"" + dn + "\": [" + strings.Join(roles, ", ") + "]\n"
	}
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runUsers(t, "sync", "--config", cfgPath)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	for _, want := range []string{
		"取込計画 (import plan): " + l.URL + " [全件 full]",
		"~ 変更 change sato: 所属 department: 財務課 → 福祉課, ロール roles: 財務 → 福祉 [uid=sato,ou=people,dc=example,dc=lg,dc=jp]",
		"+ 追加 add yamada",
		"= 維持 kept admin",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("sync plan lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := runUsers(t, "sync", "--config", cfgPath, "--apply"); err != nil {
		t.Fatalf("apply: %v", err)
	}
	want := "admin  管理者\nsato 福祉課 福祉\nsuzuki 財務課 財務\nyamada 財務課 管理者;財務\n"
	if got := readUsers(t, dir); got != want {
		t.Errorf("users after sync:\n%s\nwant\n%s", got, want)
	}
}

func TestUsersPending(t *testing.T) {
	dir, cfgPath := importEnv(t)
	csvPath := filepath.Join(dir, "future.csv")
	text := "職員番号,氏名,所属,ロール,状態,発令日\nsato,佐藤 花子,福祉課,福祉,有効,2100-04-01\nsuzuki,鈴木 一郎,財務課,財務,有効,2100-04-01\n"
	if err := os.WriteFile(csvPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, err := runUsers(t, "import", "--config", cfgPath, "--apply", csvPath); err != nil || !strings.Contains(out, "予約 scheduled 2") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	out, _, err := runUsers(t, "pending", "--config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "#1 2100-04-01 00:00 sato: 氏名 name: 佐藤 花子, 所属 department: 福祉課, ロール roles: 福祉, 状態 status: 有効 active ["+csvPath+":2; cli:") ||
		!strings.Contains(out, "#2 2100-04-01 00:00 suzuki") {
		t.Errorf("pending list:\n%s", out)
	}
	out, _, err = runUsers(t, "pending", "--config", cfgPath, "--cancel", "1")
	if err != nil || !strings.Contains(out, "予約 #1 (sato, 発令日 2100-04-01) を取り消しました") {
		t.Fatalf("cancel: %v\n%s", err, out)
	}
	if _, _, err := runUsers(t, "pending", "--config", cfgPath, "--cancel", "1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("cancelling twice: %v, want ErrNotFound", err)
	}
	out, _, _ = runUsers(t, "pending", "--config", cfgPath)
	if strings.Contains(out, "sato") || !strings.Contains(out, "suzuki") {
		t.Errorf("pending after cancel:\n%s", out)
	}
	recs, _, err := audit.QueryAll(filepath.Join(dir, "data/audit"), audit.Filter{Event: audit.EventAdmin})
	if err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1]
	if last.Action != "user_schedule_cancel" || last.Target != "sato" ||
		!strings.Contains(last.Detail, "cancelled: display_name: 佐藤 花子, department: 福祉課, roles: 福祉, status: 有効 active") {
		t.Errorf("last audit record: %+v", last)
	}
}
