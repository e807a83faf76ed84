package directory

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// MaxRangeRounds bounds the follow-up searches made for one group's
// ranged member values. Active Directory returns MaxValRange (1,500 by
// default) values a round, so this allows some 1.5 million members:
// far more than any real group. A server still not at the end after
// that many rounds is failing, and the sync stops rather than handing
// out a truncated membership.
const MaxRangeRounds = 1000

// searcher is the part of an LDAP connection that reading ranged
// values needs; tests replace it with a server that ranges like Active
// Directory.
type searcher interface {
	Search(*ldap.SearchRequest) (*ldap.SearchResult, error)
}

// pagedSearcher also runs paged subtree searches.
type pagedSearcher interface {
	searcher
	SearchWithPaging(*ldap.SearchRequest, uint32) (*ldap.SearchResult, error)
}

var _ pagedSearcher = (*ldap.Conn)(nil)

// valueRange is the range option of an attribute description returned
// by a server doing ranged retrieval ("member;range=0-1499"): values
// low to high, both included; last when high was "*", the final values.
type valueRange struct {
	low, high int
	last      bool
}

// errNotRanged reports an attribute description without a range option.
var errNotRanged = errors.New("no range option")

// parseRange splits an attribute description as returned by the server
// into the attribute type and its range option. A description with no
// options returns errNotRanged; one with any option other than a single
// range=low-high or range=low-* (high at least low, decimal digits
// only, at most MaxInt32) is an error. Attribute names come from the
// server, outside the trust boundary: nothing is assumed of them.
func parseRange(desc string) (attr string, r valueRange, err error) {
	attr, opt, ok := strings.Cut(desc, ";")
	if !ok {
		return attr, r, errNotRanged
	}
	name, spec, ok := strings.Cut(opt, "=")
	if !ok || !strings.EqualFold(name, "range") || strings.Contains(spec, ";") {
		return attr, r, fmt.Errorf("attribute %q: want one option range=low-high", desc)
	}
	lo, hi, ok := strings.Cut(spec, "-")
	if !ok {
		return attr, r, fmt.Errorf("attribute %q: range has no '-'", desc)
	}
	if r.low, err = rangeBound(lo); err != nil {
		return attr, r, fmt.Errorf("attribute %q: range start: %w", desc, err)
	}
	if hi == "*" {
		r.last = true
		return attr, r, nil
	}
	if r.high, err = rangeBound(hi); err != nil {
		return attr, r, fmt.Errorf("attribute %q: range end: %w", desc, err)
	}
	if r.high < r.low {
		return attr, r, fmt.Errorf("attribute %q: range ends before it starts", desc)
	}
	return attr, r, nil
}

// rangeBound parses a non-negative decimal without sign or spaces.
func rangeBound(s string) (int, error) {
	if s == "" || len(s) > 10 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > math.MaxInt32 {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return n, nil
}

// rangedValues returns e's values of attr and the range they came in:
// plain attr (not ranged, ok false), or one attr;range=… description.
// Two ranged descriptions, or values both plain and ranged, are errors.
func rangedValues(e *ldap.Entry, attr string) (vals []string, r valueRange, ok bool, err error) {
	var plain []string
	for _, a := range e.Attributes {
		base, ar, perr := parseRange(a.Name)
		if !strings.EqualFold(base, attr) {
			continue
		}
		switch {
		case errors.Is(perr, errNotRanged):
			plain = append(plain, a.Values...)
		case perr != nil:
			return nil, r, false, perr
		case ok:
			return nil, r, false, fmt.Errorf("two ranges of %s in one answer (%q)", attr, a.Name)
		default:
			vals, r, ok = a.Values, ar, true
		}
	}
	if !ok {
		return plain, r, false, nil
	}
	if len(plain) > 0 {
		return nil, r, false, fmt.Errorf("%s returned both plain and ranged", attr)
	}
	return vals, r, true, nil
}

// entryMembers returns all of e's values of attr. When the server
// answered with a range (Active Directory's ranged retrieval, for
// groups larger than its MaxValRange) the rest is asked for with
// base-object searches of attr;range=N-* until a range ends in "*",
// at most MaxRangeRounds of them. A gap, an overlap or anything but
// the next range is an error: the members are never silently cut.
func entryMembers(s searcher, e *ldap.Entry, attr string, timeout int) ([]string, error) {
	vals, r, ranged, err := rangedValues(e, attr)
	if err != nil {
		return nil, rangeError(e.DN, 0, err)
	}
	if !ranged {
		return vals, nil
	}
	next := 0
	out := make([]string, 0, len(vals))
	for round := 0; ; round++ {
		if r.low != next {
			return nil, rangeError(e.DN, next, fmt.Errorf("got range %d-%s, want it to start at %d", r.low, highText(r), next))
		}
		out = append(out, vals...)
		if r.last {
			return out, nil
		}
		next = r.high + 1
		if round >= MaxRangeRounds {
			return nil, fmt.Errorf("reading LDAP group %s: メンバーの範囲取得が %d 回で終わりません (ranged retrieval of %s did not end after %d searches, %d values)", e.DN, MaxRangeRounds, attr, MaxRangeRounds, len(out))
		}
		want := fmt.Sprintf("%s;range=%d-*", attr, next)
		res, err := s.Search(ldap.NewSearchRequest(e.DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, timeout, false,
			"(objectClass=*)", []string{want}, nil))
		if err != nil {
			return nil, fmt.Errorf("reading LDAP group %s (%s): %w", e.DN, want, err)
		}
		if len(res.Entries) != 1 {
			return nil, rangeError(e.DN, next, fmt.Errorf("%d entries answered %s", len(res.Entries), want))
		}
		vals, r, ranged, err = rangedValues(res.Entries[0], attr)
		if err != nil {
			return nil, rangeError(e.DN, next, err)
		}
		if !ranged {
			return nil, rangeError(e.DN, next, fmt.Errorf("no range in the answer to %s", want))
		}
	}
}

func highText(r valueRange) string {
	if r.last {
		return "*"
	}
	return strconv.Itoa(r.high)
}

func rangeError(dn string, at int, err error) error {
	return fmt.Errorf("reading LDAP group %s: メンバーの範囲取得で想定外の応答がありました (unexpected ranged retrieval answer at value %d: %w)", dn, at, err)
}
