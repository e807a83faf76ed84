package directory

import (
	"context"
	"fmt"
	"slices"

	"github.com/go-ldap/ldap/v3"

	"github.com/sekisho/sekisho/config"
)

// DefaultGroupFilter selects the groups searched when
// directory.ldap.nested_groups is on: Active Directory's group and
// OpenLDAP's groupOfNames and groupOfUniqueNames.
const DefaultGroupFilter = "(|(objectClass=group)(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"

// Bounds of nested-group expansion. A directory deeper or larger than
// this is far more likely a mistake (or a group nested in everything)
// than an organisation chart; the sync fails rather than handing out a
// silently truncated set of roles.
const (
	// MaxGroupNesting is the deepest member counted below a mapped
	// group: its direct members are level 1.
	MaxGroupNesting = 32
	// MaxGroupMembers is the most distinct members (users and groups)
	// one mapped group may reach.
	MaxGroupMembers = 100_000
)

// readGroups searches group_base_dn (default base_dn; subtree, paged)
// for group_filter and returns each group's members, DNs normalised by
// normDN. A group whose members come back ranged (Active Directory,
// more than MaxValRange members) has the rest read by entryMembers.
func readGroups(ctx context.Context, conn pagedSearcher, l *config.DirectoryLDAP) (map[string][]string, error) {
	base := groupBase(l)
	res, err := conn.SearchWithPaging(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, int(l.Timeout.Seconds()), false,
		l.GroupFilter, []string{l.MemberAttribute}, nil), ldapPageSize)
	if err != nil {
		return nil, fmt.Errorf("searching LDAP groups under %s with %s (入れ子グループの検索に失敗しました): %w", base, l.GroupFilter, ctxErr(ctx, err))
	}
	groups := make(map[string][]string, len(res.Entries))
	for _, e := range res.Entries {
		key := normDN(e.DN)
		members, err := entryMembers(conn, e, l.MemberAttribute, int(l.Timeout.Seconds()))
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		for _, m := range members {
			groups[key] = append(groups[key], normDN(m))
		}
		if _, ok := groups[key]; !ok {
			groups[key] = nil // an empty group is still a group
		}
	}
	return groups, nil
}

// groupBase is where nested groups are searched: group_base_dn, or
// base_dn when that is not set.
func groupBase(l *config.DirectoryLDAP) string {
	if l.GroupBaseDN != "" {
		return l.GroupBaseDN
	}
	return l.BaseDN
}

// readGroupMembers reads one group's members (not normalised) with a
// base-object search, ranged retrieval included.
func readGroupMembers(ctx context.Context, s searcher, dn string, l *config.DirectoryLDAP) ([]string, error) {
	res, err := s.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(l.Timeout.Seconds()), false,
		"(objectClass=*)", []string{l.MemberAttribute}, nil))
	if err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return nil, fmt.Errorf("reading LDAP group %s: no such group (グループがありません; check directory.ldap.groups): %w", dn, err)
		}
		return nil, fmt.Errorf("reading LDAP group %s: %w", dn, ctxErr(ctx, err))
	}
	var members []string
	for _, e := range res.Entries {
		m, err := entryMembers(s, e, l.MemberAttribute, int(l.Timeout.Seconds()))
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		members = append(members, m...)
	}
	return members, nil
}

// expandMembers returns every DN reachable from root's direct members
// through groups: a member that is a key of groups contributes its own
// members, transitively. root and direct are normalised DNs. Each group
// is expanded once (cycles end), breadth first so that the depth
// checked is a member's shortest distance from root. Reaching a group
// whose members would lie deeper than maxDepth, or more than maxMembers
// distinct DNs, is an error.
func expandMembers(groups map[string][]string, root string, direct []string, maxDepth, maxMembers int) ([]string, error) {
	seen := map[string]bool{root: true}
	var out []string
	level := []string{}
	add := func(dn string) error {
		if seen[dn] {
			return nil
		}
		seen[dn] = true
		out = append(out, dn)
		if len(out) > maxMembers {
			return fmt.Errorf("reading LDAP group %s: 入れ子グループを含めたメンバーが %d を超えています (more than %d members with nested groups; check directory.ldap.groups or set nested_groups: false)", root, maxMembers, maxMembers)
		}
		if _, ok := groups[dn]; ok {
			level = append(level, dn)
		}
		return nil
	}
	for _, m := range direct {
		if err := add(m); err != nil {
			return nil, err
		}
	}
	// level holds the groups found at depth; their members are at depth+1.
	for depth := 1; len(level) > 0; depth++ {
		current := level
		level = nil
		for _, g := range current {
			for _, m := range groups[g] {
				if depth >= maxDepth && !seen[m] {
					return nil, fmt.Errorf("reading LDAP group %s: グループの入れ子が %d 段を超えています (groups nested deeper than %d levels, at %s; check for a mistaken membership or set nested_groups: false)", root, maxDepth, maxDepth, g)
				}
				if err := add(m); err != nil {
					return nil, err
				}
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
