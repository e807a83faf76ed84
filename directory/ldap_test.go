package directory_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/directory"
	"github.com/sekisho/sekisho/directory/ldaptest"
	"github.com/sekisho/sekisho/store"
	"github.com/sekisho/sekisho/store/storetest"
)

func TestLDAPSyncStartTLS(t *testing.T) {
	s := ldaptest.Start(t)
	ctx := t.Context()
	cfg := s.Config()
	roles := directory.NewRoles(cfg.Directory.Roles...)
	src, err := directory.ReadLDAP(ctx, cfg, roles)
	if err != nil {
		t.Fatalf("ReadLDAP: %v", err)
	}
	var got strings.Builder
	for _, e := range src.Entries {
		fmt.Fprintf(&got, "%s|%s|%s|%s|%v|%s\n", e.ID, e.DisplayName, e.Department, strings.Join(e.Roles, ";"), e.Disabled, e.Where)
	}
	want := "sato|佐藤 花子|福祉課|福祉|false|uid=sato,ou=people,dc=example,dc=lg,dc=jp\n" +
		"suzuki|鈴木 一郎|財務課|財務|false|uid=suzuki,ou=people,dc=example,dc=lg,dc=jp\n" +
		"yamada|山田 太郎|財務課|管理者;財務|false|uid=yamada,ou=people,dc=example,dc=lg,dc=jp\n" +
		"tanaka|田中 三郎|税務課||true|uid=tanaka,ou=people,dc=example,dc=lg,dc=jp\n"
	if lines(got.String()) != lines(want) {
		t.Errorf("entries:\n%s\nwant (any order):\n%s", got.String(), want)
	}
	if !src.Full {
		t.Error("an LDAP source must be full")
	}

	// Sync: sato moved to 福祉課, ito left the directory, tanaka retired.
	st := storetest.SQLite(t)
	seed(t, st,
		&store.User{ID: "sato", DisplayName: "佐藤 花子", Department: "財務課", Roles: []string{"財務"}},
		&store.User{ID: "suzuki", DisplayName: "鈴木 一郎", Department: "財務課", Roles: []string{"財務"}},
		&store.User{ID: "tanaka", DisplayName: "田中 三郎", Department: "税務課"},
		&store.User{ID: "ito", DisplayName: "伊藤 次郎", Department: "税務課", Roles: []string{"財務"}},
	)
	clock := func() time.Time { return march }
	cs, err := directory.Plan(ctx, st, src, directory.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "ldap_plan.golden", strings.ReplaceAll(render(t, cs), s.LDAPURL, "ldap://127.0.0.1:PORT"))
	rec := &records{}
	res, err := directory.Apply(ctx, st, cs, directory.WithClock(clock), directory.WithAudit(rec))
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 || res.Changed != 1 || res.Disabled != 2 || len(res.Revoked) != 2 || len(rec.list) != 4 {
		t.Errorf("applied %+v with %d audit records", res, len(rec.list))
	}
	// A second sync finds nothing to do.
	src, err = directory.ReadLDAP(ctx, cfg, roles)
	if err != nil {
		t.Fatal(err)
	}
	cs, err = directory.Plan(ctx, st, src, directory.WithClock(clock))
	if err != nil || !cs.Empty() {
		t.Errorf("second sync: %v\n%s", err, render(t, cs))
	}
}

func lines(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	for i := range l {
		for j := i + 1; j < len(l); j++ {
			if l[j] < l[i] {
				l[i], l[j] = l[j], l[i]
			}
		}
	}
	return strings.Join(l, "\n")
}

func TestLDAPConnections(t *testing.T) {
	s := ldaptest.Start(t)
	ctx := t.Context()
	roles := directory.NewRoles("財務", "福祉", "管理者")
	read := func(mod func(*config.DirectoryLDAP)) error {
		cfg := s.Config()
		mod(&cfg.Directory.LDAP)
		_, err := directory.ReadLDAP(ctx, cfg, roles)
		return err
	}
	ok := []struct {
		name string
		mod  func(*config.DirectoryLDAP)
	}{
		{"ldaps", func(l *config.DirectoryLDAP) { l.URL, l.StartTLS = s.LDAPSURL, false }},
		{"plain ldap on loopback", func(l *config.DirectoryLDAP) { l.StartTLS = false }},
		{"password from the environment", func(l *config.DirectoryLDAP) {
			t.Setenv("SEKISHO_TEST_LDAP_PW", "yomitori-2027")
			l.BindPasswordFile, l.BindPasswordEnv = "", "SEKISHO_TEST_LDAP_PW"
		}},
		{"relative files beside the config", func(l *config.DirectoryLDAP) { l.CA, l.BindPasswordFile = "ca.pem", "bind.pw" }},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s.Config()
			cfg.Path = filepath.Join(s.Dir, "sekisho.yaml")
			tt.mod(&cfg.Directory.LDAP)
			src, err := directory.ReadLDAP(ctx, cfg, roles)
			if err != nil || len(src.Entries) != 4 {
				t.Errorf("ReadLDAP: %v", err)
			}
		})
	}
	bad := []struct {
		name string
		mod  func(*config.DirectoryLDAP)
		want string
	}{
		{"certificate from another CA", func(l *config.DirectoryLDAP) { l.CA = s.OtherCA }, "certificate signed by unknown authority"},
		{"ldaps with another CA", func(l *config.DirectoryLDAP) { l.URL, l.StartTLS, l.CA = s.LDAPSURL, false, s.OtherCA }, "certificate signed by unknown authority"},
		{"wrong server name", func(l *config.DirectoryLDAP) { l.ServerName = "ad.example.lg.jp" }, "certificate is valid for"},
		{"wrong password", func(l *config.DirectoryLDAP) {
			t.Setenv("SEKISHO_TEST_LDAP_PW", "wrong")
			l.BindPasswordFile, l.BindPasswordEnv = "", "SEKISHO_TEST_LDAP_PW"
		}, "Invalid Credentials"},
		{"unset password variable", func(l *config.DirectoryLDAP) { l.BindPasswordFile, l.BindPasswordEnv = "", "SEKISHO_TEST_LDAP_UNSET" }, "SEKISHO_TEST_LDAP_UNSET"},
		{"anonymous sees nothing", func(l *config.DirectoryLDAP) { l.BindDN = ""; l.Groups = nil }, "No Such Object"},
		{"missing id attribute", func(l *config.DirectoryLDAP) { l.IDAttribute = "employeeNumber" },
			"uid=sato,ou=people,dc=example,dc=lg,dc=jp: employeeNumber: 職員番号の属性がありません (no employeeNumber attribute)"},
		{"filter matching nobody", func(l *config.DirectoryLDAP) { l.UserFilter = "(uid=nobody)" }, "refusing to sync an empty directory"},
		{"missing group", func(l *config.DirectoryLDAP) { l.Groups["cn=nai,ou=groups,"+s.Suffix] = []string{"財務"} }, "no such group"},
		{"unknown role", func(l *config.DirectoryLDAP) { l.Groups["cn=zaimu,ou=groups,"+s.Suffix] = []string{"経理"} }, `unknown role "経理"`},
		{"plain ldap to another host", func(l *config.DirectoryLDAP) { l.URL, l.StartTLS = "ldap://ldap.example.lg.jp", false }, "plain ldap:// would send the password unencrypted"},
		{"nothing listens", func(l *config.DirectoryLDAP) { l.URL = fmt.Sprintf("ldaps://127.0.0.1:%d", ldaptest.FreePort(t)) }, "connection refused"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := read(tt.mod)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadLDAP error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// cn=keiri (sato) is nested in cn=zaimu (財務) and lists cn=zaimu as a
// member: a cycle. Nesting counts only with nested_groups, only for
// groups under group_base_dn (default base_dn) that match group_filter,
// and for mapped groups. slapd never ranges values: these cover the
// unranged path of the member reads.
func TestLDAPNestedGroups(t *testing.T) {
	s := ldaptest.Start(t)
	ctx := t.Context()
	roles := directory.NewRoles("財務", "福祉", "管理者")
	keiri := "cn=keiri,ou=groups," + s.Suffix
	direct := "sato=福祉 suzuki=財務 tanaka= yamada=管理者;財務"
	tests := []struct {
		name string
		mod  func(*config.DirectoryLDAP)
		want string
	}{
		{"off", func(l *config.DirectoryLDAP) {}, direct},
		{"off, groups under base_dn", func(l *config.DirectoryLDAP) { l.BaseDN = s.Suffix }, direct},
		{"on", func(l *config.DirectoryLDAP) { l.BaseDN, l.NestedGroups = s.Suffix, true },
			"sato=福祉;財務 suzuki=財務 tanaka= yamada=管理者;財務"},
		{"on, nested group outside base_dn", func(l *config.DirectoryLDAP) { l.NestedGroups = true }, direct},
		{"on, groups under group_base_dn", func(l *config.DirectoryLDAP) {
			l.NestedGroups, l.GroupBaseDN = true, "ou=groups,"+s.Suffix
		}, "sato=福祉;財務 suzuki=財務 tanaka= yamada=管理者;財務"},
		{"on, group_base_dn without the nested group", func(l *config.DirectoryLDAP) {
			l.BaseDN, l.NestedGroups, l.GroupBaseDN = s.Suffix, true, "ou=people,"+s.Suffix
		}, direct},
		{"on, nested group not matching group_filter", func(l *config.DirectoryLDAP) {
			l.BaseDN, l.NestedGroups, l.GroupFilter = s.Suffix, true, "(objectClass=groupOfUniqueNames)"
		}, direct},
		{"on, a mapped group is followed outside base_dn", func(l *config.DirectoryLDAP) {
			l.NestedGroups = true
			l.Groups[keiri] = []string{"管理者"}
		}, "sato=福祉;管理者;財務 suzuki=管理者;財務 tanaka= yamada=管理者;財務"},
		{"off, a mapped group counts only for its direct members", func(l *config.DirectoryLDAP) {
			l.Groups[keiri] = []string{"管理者"}
		}, "sato=福祉;管理者 suzuki=財務 tanaka= yamada=管理者;財務"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s.Config()
			tt.mod(&cfg.Directory.LDAP)
			src, err := directory.ReadLDAP(ctx, cfg, roles)
			if err != nil {
				t.Fatalf("ReadLDAP: %v", err)
			}
			got := make([]string, 0, len(src.Entries))
			for _, e := range src.Entries {
				got = append(got, e.ID+"="+strings.Join(e.Roles, ";"))
			}
			slices.Sort(got)
			if strings.Join(got, " ") != tt.want {
				t.Errorf("roles %s\nwant  %s", strings.Join(got, " "), tt.want)
			}
		})
	}

	bad := []struct {
		name string
		mod  func(*config.DirectoryLDAP)
		want string
	}{
		{"missing mapped group", func(l *config.DirectoryLDAP) { l.Groups["cn=nai,ou=groups,"+s.Suffix] = []string{"財務"} }, "no such group"},
		{"group filter the server refuses", func(l *config.DirectoryLDAP) { l.GroupFilter = "(objectClass=" }, "searching LDAP groups under"},
		{"missing group_base_dn", func(l *config.DirectoryLDAP) { l.GroupBaseDN = "ou=nai," + s.Suffix }, "searching LDAP groups under ou=nai,"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s.Config()
			cfg.Directory.LDAP.BaseDN, cfg.Directory.LDAP.NestedGroups = s.Suffix, true
			tt.mod(&cfg.Directory.LDAP)
			_, err := directory.ReadLDAP(ctx, cfg, roles)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadLDAP error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
