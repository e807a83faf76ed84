package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/sekisho/sekisho/config"
)

// LDAP defaults (OpenLDAP's inetOrgPerson; for Active Directory set
// id_attribute: sAMAccountName, department_attribute: department,
// user_filter: (&(objectCategory=person)(objectClass=user))).
const (
	DefaultUserFilter          = "(objectClass=inetOrgPerson)"
	DefaultIDAttribute         = "uid"
	DefaultNameAttribute       = "displayName"
	DefaultDepartmentAttribute = "departmentNumber"
	DefaultMemberAttribute     = "member"
	DefaultLDAPTimeout         = 10 * time.Second
	// ldapPageSize keeps each page under Active Directory's MaxPageSize (1000).
	ldapPageSize = 500
)

// ReadLDAP reads every user under directory.ldap.base_dn that matches
// user_filter: id, display name (cn when the name attribute is empty),
// department, disabled (matching disabled_filter), and roles from the
// configured groups they are members of. With nested_groups a member
// of a group nested in a mapped group (under group_base_dn, default
// base_dn, matching group_filter, or itself mapped) gets the mapped group's roles too,
// within [MaxGroupNesting] and [MaxGroupMembers]. Members that Active
// Directory returns ranged (member;range=0-1499) are read to the end,
// within [MaxRangeRounds] follow-up searches per group. The result is a full
// source: applying it disables users the directory no longer has. roles
// are the known roles; a group mapped to an unknown role is an error.
// The connection is LDAPS or StartTLS; plain ldap:// is allowed only to
// a loopback address.
func ReadLDAP(ctx context.Context, cfg *config.Config, roles Roles) (*Source, error) {
	l := cfg.Directory.LDAP
	if l.URL == "" {
		return nil, errors.New("reading LDAP: directory.ldap.url is not set (directory.ldap.url を設定してください)")
	}
	setDefault(&l.UserFilter, DefaultUserFilter)
	setDefault(&l.IDAttribute, DefaultIDAttribute)
	setDefault(&l.NameAttribute, DefaultNameAttribute)
	setDefault(&l.DepartmentAttribute, DefaultDepartmentAttribute)
	setDefault(&l.MemberAttribute, DefaultMemberAttribute)
	setDefault(&l.GroupFilter, DefaultGroupFilter)
	if l.Timeout <= 0 {
		l.Timeout = DefaultLDAPTimeout
	}

	// Every mapped role must be known before anything is read.
	groupDNs := make([]string, 0, len(l.Groups))
	for dn, rs := range l.Groups {
		groupDNs = append(groupDNs, dn)
		for _, r := range rs {
			if r = strings.TrimPrefix(r, "role:"); roles != nil && !roles[r] {
				return nil, fmt.Errorf("reading LDAP: directory.ldap.groups %q: ロール %q は定義されていません (unknown role %q)", dn, r, r)
			}
		}
	}
	slices.Sort(groupDNs)

	conn, err := dialLDAP(ctx, cfg, &l)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	// Roles by member DN. Mapped groups are always read directly, so a
	// missing one is reported as such with or without nesting.
	memberRoles := map[string][]string{}
	var nested map[string][]string // group DN → member DNs, with nested_groups
	if l.NestedGroups && len(groupDNs) > 0 {
		if nested, err = readGroups(ctx, conn, &l); err != nil {
			return nil, err
		}
	}
	direct := make(map[string][]string, len(groupDNs))
	for _, gdn := range groupDNs {
		members, err := readGroupMembers(ctx, conn, gdn, &l)
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			key := normDN(m)
			direct[gdn] = append(direct[gdn], key)
			if nested != nil {
				continue
			}
			for _, r := range l.Groups[gdn] {
				memberRoles[key] = append(memberRoles[key], strings.TrimPrefix(r, "role:"))
			}
		}
	}
	if nested != nil {
		// A mapped group nested in another is followed even outside
		// base_dn: its members were just read.
		for _, gdn := range groupDNs {
			nested[normDN(gdn)] = direct[gdn]
		}
		for _, gdn := range groupDNs {
			members, err := expandMembers(nested, normDN(gdn), direct[gdn], MaxGroupNesting, MaxGroupMembers)
			if err != nil {
				return nil, err
			}
			for _, key := range members {
				for _, r := range l.Groups[gdn] {
					memberRoles[key] = append(memberRoles[key], strings.TrimPrefix(r, "role:"))
				}
			}
		}
	}

	disabled := map[string]bool{}
	if l.DisabledFilter != "" {
		res, err := conn.SearchWithPaging(ldap.NewSearchRequest(l.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, int(l.Timeout.Seconds()), false,
			"(&"+l.UserFilter+l.DisabledFilter+")", []string{"1.1"}, nil), ldapPageSize)
		if err != nil {
			return nil, fmt.Errorf("searching LDAP for disabled users (%s): %w", l.DisabledFilter, ctxErr(ctx, err))
		}
		for _, e := range res.Entries {
			disabled[normDN(e.DN)] = true
		}
	}

	res, err := conn.SearchWithPaging(ldap.NewSearchRequest(l.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, int(l.Timeout.Seconds()), false,
		l.UserFilter, []string{l.IDAttribute, l.NameAttribute, "cn", l.DepartmentAttribute}, nil), ldapPageSize)
	if err != nil {
		return nil, fmt.Errorf("searching LDAP users under %s with %s: %w", l.BaseDN, l.UserFilter, ctxErr(ctx, err))
	}
	src := &Source{Name: l.URL, Full: true}
	errs := &RowErrors{}
	firstDN := map[string]string{}
	for _, e := range res.Entries {
		key := normDN(e.DN)
		en := &Entry{
			ID:          trim(e.GetEqualFoldAttributeValue(l.IDAttribute)),
			DisplayName: trim(e.GetEqualFoldAttributeValue(l.NameAttribute)),
			Department:  trim(e.GetEqualFoldAttributeValue(l.DepartmentAttribute)),
			Roles:       normRoles(memberRoles[key]),
			Disabled:    disabled[key],
			Where:       e.DN,
		}
		if en.DisplayName == "" {
			en.DisplayName = trim(e.GetEqualFoldAttributeValue("cn"))
		}
		switch {
		case en.ID == "":
			errs.add(e.DN, 0, l.IDAttribute, "職員番号の属性がありません (no %s attribute)", l.IDAttribute)
			continue
		case !userIDPattern.MatchString(en.ID):
			errs.add(e.DN, 0, l.IDAttribute, "%q は職員番号に使えません (not a valid id)", en.ID)
			continue
		}
		for _, v := range []string{en.DisplayName, en.Department} {
			if msg := checkText(v); msg != "" {
				errs.add(e.DN, 0, "", "%s", msg)
			}
		}
		if first, dup := firstDN[en.ID]; dup {
			errs.add(e.DN, 0, l.IDAttribute, "職員番号 %s が %s と重複しています (duplicate id)", en.ID, first)
			continue
		}
		firstDN[en.ID] = e.DN
		src.Entries = append(src.Entries, en)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	if len(src.Entries) == 0 {
		// A wrong base DN or filter would otherwise disable everyone.
		return nil, fmt.Errorf("reading LDAP: no users under %s match %s; refusing to sync an empty directory (利用者が1人も見つかりません)", l.BaseDN, l.UserFilter)
	}
	return src, nil
}

func setDefault(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

// ctxErr prefers the context's error: a closed connection is how a
// cancelled read ends.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// normDN is the form in which DNs are compared: parsed, lower case.
func normDN(s string) string {
	dn, err := ldap.ParseDN(s)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(s))
	}
	return strings.ToLower(dn.String())
}

// dialLDAP connects (LDAPS, or ldap:// with StartTLS) and binds.
func dialLDAP(ctx context.Context, cfg *config.Config, l *config.DirectoryLDAP) (*ldap.Conn, error) {
	u, err := url.Parse(l.URL)
	if err != nil {
		return nil, fmt.Errorf("connecting to LDAP: directory.ldap.url %q: %w", l.URL, err)
	}
	host := u.Hostname()
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if l.ServerName != "" {
		tc.ServerName = l.ServerName
	}
	if l.CA != "" {
		path := resolve(cfg, l.CA)
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("connecting to LDAP: reading directory.ldap.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("connecting to LDAP: directory.ldap.ca %s holds no PEM certificate", path)
		}
		tc.RootCAs = pool
	}
	if u.Scheme == "ldap" && !l.StartTLS && !isLoopback(host) {
		return nil, fmt.Errorf("connecting to LDAP %s: plain ldap:// would send the password unencrypted; use ldaps:// or start_tls: true (暗号化なしの接続はループバック以外では使えません)", l.URL)
	}
	password, err := bindPassword(cfg, l)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()
	type dialed struct {
		c   *ldap.Conn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		c, err := ldap.DialURL(l.URL, ldap.DialWithDialer(&net.Dialer{Timeout: l.Timeout}), ldap.DialWithTLSConfig(tc))
		ch <- dialed{c, err}
	}()
	var conn *ldap.Conn
	select {
	case d := <-ch:
		if d.err != nil {
			return nil, fmt.Errorf("connecting to LDAP %s: %w", l.URL, d.err)
		}
		conn = d.c
	case <-dctx.Done():
		go func() {
			if d := <-ch; d.c != nil {
				d.c.Close()
			}
		}()
		return nil, fmt.Errorf("connecting to LDAP %s: %w", l.URL, dctx.Err())
	}
	conn.SetTimeout(l.Timeout)
	if u.Scheme == "ldap" && l.StartTLS {
		if err := conn.StartTLS(tc); err != nil {
			conn.Close()
			return nil, fmt.Errorf("connecting to LDAP %s: StartTLS: %w", l.URL, err)
		}
	}
	if l.BindDN != "" {
		if err := conn.Bind(l.BindDN, password); err != nil {
			conn.Close()
			return nil, fmt.Errorf("connecting to LDAP %s: binding as %s: %w", l.URL, l.BindDN, err)
		}
	}
	return conn, nil
}

// bindPassword reads the bind password from bind_password_file or the
// environment variable bind_password_env.
func bindPassword(cfg *config.Config, l *config.DirectoryLDAP) (string, error) {
	if l.BindDN == "" {
		return "", nil
	}
	if l.BindPasswordFile != "" {
		b, err := os.ReadFile(resolve(cfg, l.BindPasswordFile))
		if err != nil {
			return "", fmt.Errorf("connecting to LDAP: reading directory.ldap.bind_password_file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if l.BindPasswordEnv != "" {
		if p, ok := os.LookupEnv(l.BindPasswordEnv); ok && p != "" {
			return p, nil
		}
		return "", fmt.Errorf("connecting to LDAP: environment variable %s (directory.ldap.bind_password_env) is not set (環境変数が設定されていません)", l.BindPasswordEnv)
	}
	return "", errors.New("connecting to LDAP: bind_dn needs bind_password_file or bind_password_env")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
