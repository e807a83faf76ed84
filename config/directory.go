package config

import (
	"strings"
	"time"
)

// Directory configures staff directory imports and syncs (人事異動: CSV
// from the personnel system, LDAP or Active Directory). Owned by package
// directory; see docs/directory.md. Every field is optional.
type Directory struct {
	// Roles are role names an import may assign besides those the policy
	// file names (role:R in rules and group lines). Empty: only the
	// policy's.
	Roles []string `yaml:"roles"`
	// Keep lists user ids that a full import or sync never disables
	// (local administrator accounts that are in no personnel file).
	Keep []string `yaml:"keep"`
	// Timezone in which an effective date (発令日) begins. Default Asia/Tokyo.
	Timezone string `yaml:"timezone"`
	// CheckInterval is how often a running gateway applies scheduled
	// changes that have come due. Default 1m.
	CheckInterval time.Duration `yaml:"check_interval"`
	// MaxDisable refuses a full import or sync that would disable more
	// than this many users (a wrong file or base DN) unless forced.
	// Zero: 50; negative: no limit.
	MaxDisable int `yaml:"max_disable"`
	// LDAP is the directory server for `sekisho users sync`.
	LDAP DirectoryLDAP `yaml:"ldap"`
}

// DirectoryLDAP says where and how users, departments and role groups are
// read from LDAP or Active Directory.
type DirectoryLDAP struct {
	// URL is ldaps://host[:636] or ldap://host[:389] (then StartTLS is
	// required unless the host is a loopback address).
	URL string `yaml:"url"`
	// StartTLS upgrades an ldap:// connection before binding.
	StartTLS bool `yaml:"start_tls"`
	// CA is a PEM bundle trusting the server's certificate. Empty: system roots.
	CA string `yaml:"ca"`
	// ServerName overrides the name checked in the server certificate.
	ServerName string `yaml:"server_name"`
	// BindDN and the password, read from BindPasswordFile or else from the
	// environment variable BindPasswordEnv (never written in this file).
	// Empty BindDN: anonymous.
	BindDN           string `yaml:"bind_dn"`
	BindPasswordFile string `yaml:"bind_password_file"`
	BindPasswordEnv  string `yaml:"bind_password_env"`
	// BaseDN is where users are searched (subtree). Required with URL.
	BaseDN string `yaml:"base_dn"`
	// UserFilter selects staff entries. Default (objectClass=inetOrgPerson).
	UserFilter string `yaml:"user_filter"`
	// DisabledFilter, if set, marks matching users disabled, e.g. for AD
	// (userAccountControl:1.2.840.113556.1.4.803:=2).
	DisabledFilter string `yaml:"disabled_filter"`
	// Attribute names. Defaults: uid, displayName (cn when empty),
	// departmentNumber, member.
	IDAttribute         string `yaml:"id_attribute"`
	NameAttribute       string `yaml:"name_attribute"`
	DepartmentAttribute string `yaml:"department_attribute"`
	MemberAttribute     string `yaml:"member_attribute"`
	// Groups maps a group DN to the roles its members get.
	Groups map[string][]string `yaml:"groups"`
	// NestedGroups also gives a mapped group's roles to the members of
	// groups nested in it (transitively, cycles allowed). Only groups
	// under GroupBaseDN that match GroupFilter, and the mapped groups
	// themselves, are followed. False (the default): only users listed
	// directly in a mapped group's member attribute get its roles;
	// following nesting grants more, so it must be asked for.
	NestedGroups bool `yaml:"nested_groups"`
	// GroupFilter selects the group entries searched for NestedGroups.
	// Default (|(objectClass=group)(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)).
	GroupFilter string `yaml:"group_filter"`
	// GroupBaseDN is where groups are searched (subtree) for
	// NestedGroups, typically ou=groups when BaseDN is ou=people.
	// Empty: BaseDN.
	GroupBaseDN string `yaml:"group_base_dn"`
	// Timeout bounds connecting and each operation. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// directory checks the directory: section.
func (v *validator) directory() {
	d := &v.cfg.Directory
	seen := map[string]bool{}
	for i, r := range d.Roles {
		r = strings.TrimPrefix(r, "role:")
		switch {
		case r == "" || strings.ContainsAny(r, ",;|\"") || strings.TrimSpace(r) != r:
			v.errorf(idx("directory.roles", i), "%q is not a role name (ロール名として使えない文字があります)", d.Roles[i])
		case seen[r]:
			v.errorf(idx("directory.roles", i), "%q is listed twice (同じロールが二度あります)", r)
		}
		seen[r] = true
	}
	if d.Timezone != "" {
		if _, err := time.LoadLocation(d.Timezone); err != nil {
			v.errorf("directory.timezone", "%q is not a time zone, e.g. Asia/Tokyo (タイムゾーン名が不正です)", d.Timezone)
		}
	}
	l := &d.LDAP
	if l.URL == "" {
		if v.present("directory.ldap") && (l.BaseDN != "" || len(l.Groups) > 0 || l.NestedGroups || l.GroupFilter != "" || l.GroupBaseDN != "") {
			v.errorf("directory.ldap.url", "required (LDAP サーバーの URL を指定してください)")
		}
		return
	}
	switch {
	case strings.HasPrefix(l.URL, "ldaps://"):
		if l.StartTLS {
			v.errorf("directory.ldap.start_tls", "not with ldaps:// (ldaps:// では StartTLS は使いません)")
		}
	case strings.HasPrefix(l.URL, "ldap://"):
	default:
		v.errorf("directory.ldap.url", "%q must start with ldaps:// or ldap:// (ldaps:// か ldap:// で始めてください)", l.URL)
	}
	if l.BaseDN == "" {
		v.errorf("directory.ldap.base_dn", "required with directory.ldap.url (検索の起点 DN を指定してください)")
	}
	if l.BindDN != "" && l.BindPasswordFile == "" && l.BindPasswordEnv == "" {
		v.errorf("directory.ldap.bind_dn", "needs bind_password_file or bind_password_env (パスワードの読み先を指定してください)")
	}
	for _, kf := range []struct{ key, filter string }{
		{"user_filter", l.UserFilter},
		{"disabled_filter", l.DisabledFilter},
		{"group_filter", l.GroupFilter},
	} {
		if f := kf.filter; f != "" && (!strings.HasPrefix(f, "(") || !strings.HasSuffix(f, ")") || strings.Count(f, "(") != strings.Count(f, ")")) {
			v.errorf("directory.ldap."+kf.key, "%q is not an LDAP filter in parentheses (括弧で囲んだ LDAP フィルタを書いてください)", f)
		}
	}
	if l.GroupFilter != "" && !l.NestedGroups {
		v.errorf("directory.ldap.group_filter", "has no effect without nested_groups: true (group_filter は nested_groups: true のときだけ使います)")
	}
	if l.GroupBaseDN != "" {
		switch {
		case !strings.Contains(l.GroupBaseDN, "="):
			v.errorf("directory.ldap.group_base_dn", "%q is not a DN such as ou=groups,dc=example (グループを検索する起点の DN を書いてください)", l.GroupBaseDN)
		case !l.NestedGroups:
			v.errorf("directory.ldap.group_base_dn", "has no effect without nested_groups: true (group_base_dn は nested_groups: true のときだけ使います)")
		}
	}
	for dn, roles := range l.Groups {
		if !strings.Contains(dn, "=") {
			v.errorf("directory.ldap.groups."+dn, "%q is not a group DN such as cn=財務,ou=groups,dc=example (グループの DN を書いてください)", dn)
		}
		if len(roles) == 0 {
			v.errorf("directory.ldap.groups."+dn, "no roles given (ロールを1つ以上指定してください)")
		}
	}
}
