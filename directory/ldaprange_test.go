package directory

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/sekisho/sekisho/config"
)

func TestParseRange(t *testing.T) {
	ok := []struct {
		desc, attr string
		want       valueRange
	}{
		{"member;range=0-1499", "member", valueRange{low: 0, high: 1499}},
		{"member;range=1500-*", "member", valueRange{low: 1500, last: true}},
		{"Member;Range=3-3", "Member", valueRange{low: 3, high: 3}},
		{"member;range=0-*", "member", valueRange{last: true}},
		{"member;range=2147483647-*", "member", valueRange{low: 2147483647, last: true}},
	}
	for _, tt := range ok {
		attr, r, err := parseRange(tt.desc)
		if err != nil || attr != tt.attr || r != tt.want {
			t.Errorf("parseRange(%q) = %q, %+v, %v; want %q, %+v", tt.desc, attr, r, err, tt.attr, tt.want)
		}
	}
	if attr, _, err := parseRange("member"); attr != "member" || !errors.Is(err, errNotRanged) {
		t.Errorf("parseRange(member) = %q, %v; want errNotRanged", attr, err)
	}
	bad := []struct{ desc, want string }{
		{"member;range=5-4", "ends before it starts"},
		{"member;range=-1-5", `"" is not a number`},
		{"member;range=+1-5", `"+1" is not a number`},
		{"member;range=a-5", `"a" is not a number`},
		{"member;range=1-b", `"b" is not a number`},
		{"member;range=1- 5", `" 5" is not a number`},
		{"member;range=0-", `"" is not a number`},
		{"member;range=*-*", `"*" is not a number`},
		{"member;range=2147483648-*", "out of range"},
		{"member;range=99999999999-*", "not a number"},
		{"member;range=0", "no '-'"},
		{"member;range", "want one option"},
		{"member;binary", "want one option"},
		{"member;range=0-1;range=2-*", "want one option"},
		{"member;x-range=0-1", "want one option"},
		{"member;", "want one option"},
	}
	for _, tt := range bad {
		if _, r, err := parseRange(tt.desc); err == nil || errors.Is(err, errNotRanged) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseRange(%q) = %+v, %v; want an error containing %q", tt.desc, r, err, tt.want)
		}
	}
}

// FuzzParseRange: attribute descriptions come from the server. Any
// string gives an error or a range that is well formed and reads back
// the same when written out again; never a panic.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"member", "member;range=0-1499", "member;range=1500-*", "member;range=9-3", "member;RANGE=007-8",
		"member;range=-", "member;range=1-2-3", "member;range=0-1;binary", ";", "", "member;range=4294967296-*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, desc string) {
		attr, r, err := parseRange(desc)
		if !strings.HasPrefix(desc, attr) || strings.Contains(attr, ";") {
			t.Fatalf("parseRange(%q): attribute %q is not the part before ';'", desc, attr)
		}
		if err != nil {
			if r.last || (errors.Is(err, errNotRanged) && attr != desc) {
				t.Fatalf("parseRange(%q) = %+v, %v", desc, r, err)
			}
			return
		}
		if r.low < 0 || r.low > 1<<31-1 || (!r.last && (r.high < r.low || r.high > 1<<31-1)) || (r.last && r.high != 0) {
			t.Fatalf("parseRange(%q) = %+v: not a well-formed range", desc, r)
		}
		again := fmt.Sprintf("%s;range=%d-%s", attr, r.low, highText(r))
		attr2, r2, err := parseRange(again)
		if err != nil || attr2 != attr || r2 != r {
			t.Fatalf("parseRange(%q) = %+v, but %q reads back as %q, %+v, %v", desc, r, again, attr2, r2, err)
		}
	})
}

// fakeAD answers member reads as Active Directory does: a group with
// more than maxVal members comes back as member;range=0-(maxVal-1) next
// to an empty plain member, and member;range=N-* asks for the next
// maxVal values, the final ones as member;range=N-*. shift moves the
// start of every follow-up answer (a gap, or going backwards);
// endless never ends.
type fakeAD struct {
	groups  map[string][]string
	maxVal  int
	shift   int
	endless bool
	asked   []string // attributes asked for, in order
}

func (f *fakeAD) entry(dn string, start int) *ldap.Entry {
	vals := f.groups[dn]
	if start == 0 && len(vals) <= f.maxVal && !f.endless {
		return ldap.NewEntry(dn, map[string][]string{"member": vals})
	}
	if start > 0 {
		start += f.shift
	}
	start = max(start, 0)
	end := min(start+f.maxVal, len(vals))
	high := fmt.Sprint(end - 1)
	var got []string
	if f.endless {
		high, got = fmt.Sprint(start+f.maxVal-1), uids(f.maxVal)
	} else {
		got = vals[min(start, len(vals)):end]
		if end == len(vals) && start > 0 {
			high = "*"
		}
	}
	e := ldap.NewEntry(dn, nil)
	e.Attributes = []*ldap.EntryAttribute{
		ldap.NewEntryAttribute("member", nil),
		ldap.NewEntryAttribute(fmt.Sprintf("member;range=%d-%s", start, high), got),
	}
	return e
}

func (f *fakeAD) Search(req *ldap.SearchRequest) (*ldap.SearchResult, error) {
	f.asked = append(f.asked, strings.Join(req.Attributes, ","))
	if req.Scope != ldap.ScopeBaseObject || len(req.Attributes) != 1 {
		return nil, fmt.Errorf("fake: want a base-object search for one attribute, got %+v", req)
	}
	if _, ok := f.groups[req.BaseDN]; !ok {
		return nil, ldap.NewError(ldap.LDAPResultNoSuchObject, errors.New("no such object"))
	}
	start := 0
	if a := req.Attributes[0]; a != "member" {
		if _, err := fmt.Sscanf(a, "member;range=%d-*", &start); err != nil {
			return nil, fmt.Errorf("fake: attribute %q: %w", a, err)
		}
	}
	return &ldap.SearchResult{Entries: []*ldap.Entry{f.entry(req.BaseDN, start)}}, nil
}

func (f *fakeAD) SearchWithPaging(req *ldap.SearchRequest, _ uint32) (*ldap.SearchResult, error) {
	f.asked = append(f.asked, "subtree:"+strings.Join(req.Attributes, ","))
	res := &ldap.SearchResult{}
	for _, dn := range slices.Sorted(func(yield func(string) bool) {
		for dn := range f.groups {
			if strings.HasSuffix(dn, ","+req.BaseDN) && !yield(dn) {
				return
			}
		}
	}) {
		res.Entries = append(res.Entries, f.entry(dn, 0))
	}
	return res, nil
}

func uids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("uid=u%d,ou=people,dc=x", i)
	}
	return out
}

var testLDAP = &config.DirectoryLDAP{BaseDN: "ou=people,dc=x", GroupBaseDN: "ou=groups,dc=x", MemberAttribute: "member", GroupFilter: DefaultGroupFilter, Timeout: 10 * time.Second}

func TestReadGroupMembersRanged(t *testing.T) {
	const big, small = "cn=big,ou=groups,dc=x", "cn=small,ou=groups,dc=x"
	newAD := func() *fakeAD {
		return &fakeAD{maxVal: 3, groups: map[string][]string{big: uids(7), small: uids(3), "cn=empty,ou=groups,dc=x": nil}}
	}
	ad := newAD()
	got, err := readGroupMembers(t.Context(), ad, big, testLDAP)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(uids(7), got); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"member", "member;range=3-*", "member;range=6-*"}, ad.asked); diff != "" {
		t.Errorf("searches (-want +got):\n%s", diff)
	}
	// Exactly maxVal members: not ranged, one search.
	ad = newAD()
	if got, err := readGroupMembers(t.Context(), ad, small, testLDAP); err != nil || len(got) != 3 || len(ad.asked) != 1 {
		t.Errorf("3 members: %v, %v after %q", got, err, ad.asked)
	}
	// The values end exactly at a range boundary: 6 members come as
	// 0-2 and then 3-* with the last three.
	ad = newAD()
	ad.groups[big] = uids(6)
	if got, err := readGroupMembers(t.Context(), ad, big, testLDAP); err != nil || !slices.Equal(got, uids(6)) {
		t.Errorf("6 members: %v, %v after %q", got, err, ad.asked)
	}
	if _, err := readGroupMembers(t.Context(), newAD(), "cn=nai,ou=groups,dc=x", testLDAP); err == nil || !strings.Contains(err.Error(), "no such group") {
		t.Errorf("missing group: %v", err)
	}

	bad := []struct {
		name string
		mod  func(*fakeAD)
		want string
	}{
		{"gap", func(f *fakeAD) { f.shift = 1 }, "想定外の応答がありました (unexpected ranged retrieval answer at value 3: got range 4-"},
		{"backwards", func(f *fakeAD) { f.shift = -1 }, "at value 3: got range 2-4, want it to start at 3"},
		{"never ends", func(f *fakeAD) { f.endless = true }, fmt.Sprintf("メンバーの範囲取得が %d 回で終わりません (ranged retrieval of member did not end after %d searches, %d values)", MaxRangeRounds, MaxRangeRounds, 3*(MaxRangeRounds+1))},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			ad := newAD()
			tt.mod(ad)
			_, err := readGroupMembers(t.Context(), ad, big, testLDAP)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tt.want)
			}
			if tt.name == "never ends" && len(ad.asked) != MaxRangeRounds+1 {
				t.Errorf("%d searches, want %d", len(ad.asked), MaxRangeRounds+1)
			}
		})
	}
}

// The subtree group search: an entry whose members come back ranged has
// the rest fetched with base-object searches; unranged ones need none.
func TestReadGroupsRanged(t *testing.T) {
	ad := &fakeAD{maxVal: 3, groups: map[string][]string{
		"cn=big,ou=groups,dc=x":   uids(8),
		"cn=small,ou=groups,dc=x": {"UID=U1, OU=People,dc=x"},
		"cn=empty,ou=groups,dc=x": nil,
		"cn=elsewhere,dc=x":       uids(9), // outside group_base_dn
	}}
	got, err := readGroups(t.Context(), ad, testLDAP)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"cn=big,ou=groups,dc=x":   uids(8),
		"cn=small,ou=groups,dc=x": {"uid=u1,ou=people,dc=x"},
		"cn=empty,ou=groups,dc=x": nil,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"subtree:member", "member;range=3-*", "member;range=6-*"}, ad.asked); diff != "" {
		t.Errorf("searches (-want +got):\n%s", diff)
	}
	// The group search runs under base_dn without group_base_dn.
	l := *testLDAP
	l.BaseDN, l.GroupBaseDN = "dc=x", ""
	if got, err := readGroups(t.Context(), ad, &l); err != nil || len(got["cn=elsewhere,dc=x"]) != 9 {
		t.Errorf("under base_dn: %v, %v", got, err)
	}
	ad.shift = 2
	if _, err := readGroups(t.Context(), ad, testLDAP); err == nil || !strings.Contains(err.Error(), "reading LDAP group cn=big,ou=groups,dc=x: メンバーの範囲取得で想定外の応答がありました") {
		t.Errorf("gap in the subtree search: %v", err)
	}
}

func TestRangedValuesOddAnswers(t *testing.T) {
	entry := func(attrs ...*ldap.EntryAttribute) *ldap.Entry {
		e := ldap.NewEntry("cn=g", nil)
		e.Attributes = attrs
		return e
	}
	bad := []struct {
		name string
		e    *ldap.Entry
		want string
	}{
		{"two ranges", entry(ldap.NewEntryAttribute("member;range=0-1", []string{"a", "b"}), ldap.NewEntryAttribute("member;range=2-*", []string{"c"})), "two ranges of member"},
		{"plain and ranged", entry(ldap.NewEntryAttribute("member", []string{"a"}), ldap.NewEntryAttribute("member;range=1-*", []string{"b"})), "both plain and ranged"},
		{"bad range", entry(ldap.NewEntryAttribute("MEMBER;range=x-*", []string{"a"})), `"x" is not a number`},
	}
	for _, tt := range bad {
		if _, err := entryMembers(&fakeAD{}, tt.e, "member", 10); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	// Other attributes, ranged or not, are not members.
	got, err := entryMembers(&fakeAD{}, entry(ldap.NewEntryAttribute("memberOf;range=0-1", []string{"x"}), ldap.NewEntryAttribute("Member", []string{"a"})), "member", 10)
	if err != nil || !slices.Equal(got, []string{"a"}) {
		t.Errorf("members %v, %v; want [a]", got, err)
	}
}
