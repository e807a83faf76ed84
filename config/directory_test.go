package config

import (
	"strings"
	"testing"
	"time"
)

func TestDirectoryValidation(t *testing.T) {
	const srv = "server: {http_listen: \":1\"}\n"
	bad := []struct {
		name, yaml, want string
	}{
		{"role twice", srv + "directory:\n  roles: [財務, role:財務]\n", `t.yaml:3: directory.roles[1]: "財務" is listed twice`},
		{"role with separator", srv + "directory:\n  roles: [\"a;b\"]\n", `t.yaml:3: directory.roles[0]: "a;b" is not a role name`},
		{"timezone", srv + "directory:\n  timezone: Mars/Base\n", `t.yaml:3: directory.timezone: "Mars/Base" is not a time zone`},
		{"url scheme", srv + "directory:\n  ldap:\n    url: http://ad\n    base_dn: dc=x\n", `t.yaml:4: directory.ldap.url: "http://ad" must start with ldaps:// or ldap://`},
		{"base dn", srv + "directory:\n  ldap:\n    url: ldaps://ad\n", `t.yaml:3: directory.ldap.base_dn: required with directory.ldap.url`},
		{"starttls on ldaps", srv + "directory:\n  ldap: {url: \"ldaps://ad\", base_dn: dc=x, start_tls: true}\n", `t.yaml:3: directory.ldap.start_tls: not with ldaps://`},
		{"bind without password", srv + "directory:\n  ldap: {url: \"ldaps://ad\", base_dn: dc=x, bind_dn: cn=r}\n", `t.yaml:3: directory.ldap.bind_dn: needs bind_password_file or bind_password_env`},
		{"filter", srv + "directory:\n  ldap: {url: \"ldaps://ad\", base_dn: dc=x, user_filter: \"uid=*\"}\n", `t.yaml:3: directory.ldap.user_filter: "uid=*" is not an LDAP filter`},
		{"group without roles", srv + "directory:\n  ldap:\n    url: ldaps://ad\n    base_dn: dc=x\n    groups:\n      cn=g,dc=x: []\n", `directory.ldap.groups.cn=g,dc=x: no roles given`},
		{"group filter", srv + "directory:\n  ldap:\n    url: ldaps://ad\n    base_dn: dc=x\n    nested_groups: true\n    group_filter: objectClass=group\n", `t.yaml:7: directory.ldap.group_filter: "objectClass=group" is not an LDAP filter`},
		{"group filter without nesting", srv + "directory:\n  ldap:\n    url: ldaps://ad\n    base_dn: dc=x\n    group_filter: (objectClass=group)\n", `t.yaml:6: directory.ldap.group_filter: has no effect without nested_groups: true`},
		{"group base dn without nesting", srv + "directory:\n  ldap:\n    url: ldaps://ad\n    base_dn: ou=people,dc=x\n    group_base_dn: ou=groups,dc=x\n", `t.yaml:6: directory.ldap.group_base_dn: has no effect without nested_groups: true`},
		{"group base dn not a dn", srv + "directory:\n  ldap:\n    url: ldaps://ad\n    base_dn: dc=x\n    nested_groups: true\n    group_base_dn: groups\n", `t.yaml:7: directory.ldap.group_base_dn: "groups" is not a DN`},
		{"group base dn without url", srv + "directory:\n  ldap:\n    group_base_dn: ou=groups,dc=x\n", `t.yaml:3: directory.ldap.url: required`},
		{"nested groups not a bool", srv + "directory:\n  ldap:\n    url: ldaps://ad\n    base_dn: dc=x\n    nested_groups: yes please\n", `t.yaml:6: directory.ldap.nested_groups: want true or false`},
		{"nested groups without url", srv + "directory:\n  ldap:\n    nested_groups: true\n", `t.yaml:3: directory.ldap.url: required`},
		{"groups without url", srv + "directory:\n  ldap:\n    groups: {\"cn=g,dc=x\": [a]}\n", `t.yaml:3: directory.ldap.url: required`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
	cfg, err := Parse("t.yaml", []byte(srv+`directory:
  roles: [財務, 福祉]
  keep: [admin]
  check_interval: 30s
  ldap:
    url: ldap://127.0.0.1:3389
    start_tls: true
    base_dn: ou=people,dc=example,dc=lg,dc=jp
    bind_dn: cn=reader,dc=example,dc=lg,dc=jp
    bind_password_env: SEKISHO_LDAP_PASSWORD
    disabled_filter: (employeeType=退職)
    nested_groups: true
    group_filter: (objectClass=groupOfNames)
    group_base_dn: ou=groups,dc=example,dc=lg,dc=jp
    groups:
      cn=zaimu,ou=groups,dc=example,dc=lg,dc=jp: [財務]
`))
	if err != nil {
		t.Fatalf("valid directory section: %v", err)
	}
	d := cfg.Directory
	if d.CheckInterval != 30*time.Second || len(d.Roles) != 2 || d.LDAP.Groups["cn=zaimu,ou=groups,dc=example,dc=lg,dc=jp"][0] != "財務" || !d.LDAP.StartTLS ||
		!d.LDAP.NestedGroups || d.LDAP.GroupFilter != "(objectClass=groupOfNames)" || d.LDAP.GroupBaseDN != "ou=groups,dc=example,dc=lg,dc=jp" {
		t.Errorf("decoded %+v", d)
	}
	// Nesting is opt-in: a section without the keys leaves it off.
	cfg, err = Parse("t.yaml", []byte(srv+"directory:\n  ldap: {url: \"ldaps://ad\", base_dn: dc=x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Directory.LDAP; l.NestedGroups || l.GroupFilter != "" || l.GroupBaseDN != "" {
		t.Errorf("nested_groups defaults to %v, group_filter to %q, group_base_dn to %q; want false and empty (the reader's defaults)", l.NestedGroups, l.GroupFilter, l.GroupBaseDN)
	}
}
