package policy

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/sekisho/sekisho/config"
)

// modelText is the shipped Casbin model ("builtin").
//
//go:embed model.conf
var modelText string

// ModelText returns the shipped Casbin model, for documentation and tools.
func ModelText() string { return modelText }

// Factors a class may require (config.Class.Require).
const (
	FactorPasskey          = "passkey"
	FactorPasskeyUV        = "passkey_uv"
	FactorDeviceCert       = "device_cert"
	FactorRegisteredDevice = "registered_device"
	FactorDeviceOwned      = "device_owned"
)

// RouteAdmin is the route name under which the gateway decides requests
// to the admin console.
const RouteAdmin = "admin"

// Segments every configuration knows, besides those its routes name.
var knownSegments = []string{"mynumber", "lgwan", "internet"}

// compiled is one immutable policy: the parsed file checked against the
// configuration, its Casbin enforcer, the index that the hot path reads,
// and the decision cache that belongs to it (a reload brings a new, empty
// cache). It is swapped whole on reload and never modified.
type compiled struct {
	file     *File
	version  string
	loadedAt time.Time

	enforcer *casbin.Enforcer
	// ancestors: for every name that appears as a group member, all the
	// roles it inherits (transitively), as Casbin's role manager reports.
	ancestors map[string][]string
	// index: subject → object → rules, each rule under every alternative
	// of its subject and object, in file order.
	index map[string]map[string][]*Rule

	conds    map[string]*Condition
	holidays map[string]bool
	classes  map[string]config.Class
	zones    []string // configured zone names in file order, then "external"
	lifetime time.Duration
	loc      *time.Location

	// usesMethodPath: some condition tests method or path, so they belong
	// in the cache key.
	usesMethodPath bool
	cache          *lru.Cache[string, cacheEntry]

	// text is the source this was compiled from (the file, or a version
	// read from PostgreSQL).
	text []byte
}

// compile parses text and checks it against cfg.
func compile(cfg *config.Config, name string, text []byte, loc *time.Location, now time.Time) (*compiled, error) {
	f, errs := parse(name, text)
	if f == nil {
		return nil, errors.Join(errs...)
	}
	c := &compiled{
		file:      f,
		text:      bytes.Clone(text),
		loadedAt:  now,
		conds:     map[string]*Condition{},
		holidays:  map[string]bool{},
		classes:   cfg.Classes,
		lifetime:  cfg.Session.Lifetime,
		loc:       loc,
		ancestors: map[string][]string{},
		index:     map[string]map[string][]*Rule{},
	}
	sum := sha256.Sum256(text)
	c.version = hex.EncodeToString(sum[:6]) + "@" + now.UTC().Format(time.RFC3339)

	fail := func(line int, format string, args ...any) {
		if len(errs) < maxErrors {
			errs = append(errs, &Error{File: name, Line: line, Msg: fmt.Sprintf(format, args...)})
		}
	}

	// Names the configuration defines.
	zones := map[string]bool{"external": true}
	for _, z := range cfg.Zones {
		zones[z.Name] = true
		c.zones = append(c.zones, z.Name)
	}
	c.zones = append(c.zones, "external")
	// "admin" is the admin console (/.sekisho/admin/ on every routed host):
	// the gateway decides it as route "admin", action "admin", class 3A.
	routes := map[string]bool{RouteAdmin: true}
	segments := map[string]bool{}
	for _, s := range knownSegments {
		segments[s] = true
	}
	for _, r := range cfg.Routes {
		routes[r.Name] = true
		if r.Segment != "" {
			segments[r.Segment] = true
		}
	}
	for cname, cl := range cfg.Classes {
		for _, fct := range cl.Require {
			switch fct {
			case FactorPasskey, FactorPasskeyUV, FactorDeviceCert, FactorRegisteredDevice, FactorDeviceOwned:
			default:
				errs = append(errs, fmt.Errorf("classes.%s.require: 要素 %q は使えません (unknown factor %q)", cname, fct, fct))
			}
		}
		for _, z := range cl.Zones {
			if !zones[z] {
				errs = append(errs, fmt.Errorf("classes.%s.zones: ゾーン %q は zones にありません (unknown zone %q)", cname, z, z))
			}
		}
	}
	known := func(kind, v string) bool {
		switch kind {
		case testRoute:
			return routes[v]
		case testClass:
			_, ok := cfg.Classes[v]
			return ok
		case testSegment:
			return segments[v]
		case testZone:
			return zones[v]
		}
		return true
	}
	checkTests := func(cd *Condition, line int) {
		for i := range cd.Tests {
			t := &cd.Tests[i]
			switch t.Key {
			case testZone, testRoute, testClass, testSegment:
				for _, v := range t.Values {
					if !known(t.Key, v) {
						fail(line, "条件 %q: %s %q は設定にありません (%s %q is not configured)", cd.Name, t.Key, v, t.Key, v)
					}
				}
			case testMethod, testPath:
				c.usesMethodPath = true
			}
		}
	}

	// Conditions: the file's, then the configuration's.
	for _, cd := range f.Conditions {
		c.conds[cd.Name] = cd
		checkTests(cd, cd.Line)
	}
	cnames := make([]string, 0, len(cfg.Policy.Conditions))
	for n := range cfg.Policy.Conditions {
		cnames = append(cnames, n)
	}
	sort.Strings(cnames)
	for _, n := range cnames {
		cd, err := ParseCondition(n, cfg.Policy.Conditions[n])
		if err != nil {
			errs = append(errs, fmt.Errorf("policy.conditions.%s: %w", n, err))
			continue
		}
		if prev, ok := c.conds[n]; ok {
			errs = append(errs, fmt.Errorf("policy.conditions.%s: %s でも定義されています (also defined at %s)", n, prev.Source, prev.Source))
			continue
		}
		cd.Source = "config"
		c.conds[n] = cd
		checkTests(cd, 0)
	}
	for _, h := range f.Holidays {
		c.holidays[h.Date] = true
	}
	for _, d := range cfg.Policy.Holidays {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			errs = append(errs, fmt.Errorf("policy.holidays: %q は YYYY-MM-DD ではありません (date must be YYYY-MM-DD)", d))
			continue
		}
		c.holidays[d] = true
	}

	// Rules: objects and conditions must exist.
	for _, r := range f.Rules {
		for _, o := range r.Objects {
			if kind, v, ok := strings.Cut(o, ":"); ok && !known(kind, v) {
				fail(r.Line, "対象 %q は設定にありません (object %q is not in the configuration)", o, o)
			}
		}
		hasAuth := false
		for _, ref := range r.Conds {
			cd, ok := c.conds[ref.Name]
			if !ok {
				fail(r.Line, "条件 %q が定義されていません (condition %q is not defined)", ref.Name, ref.Name)
				continue
			}
			if !ref.Negate {
				for i := range cd.Tests {
					hasAuth = hasAuth || cd.Tests[i].isAuthTest()
				}
			}
		}
		if r.Effect == StepUp && !hasAuth {
			fail(r.Line, "stepup 規則には amr か max_auth_age を含む条件が必要です (a stepup rule needs a condition that tests amr or max_auth_age)")
		}
	}
	if cyc := groupCycle(f.Groups); cyc != nil {
		fail(cyc.Line, "グループが循環しています: %s → %s (group cycle)", cyc.Member, cyc.Parent)
	} else if g, depth := groupDepth(f.Groups); depth > MaxGroupDepth {
		fail(g.Line, "グループの継承が深すぎます: %s から %d 段（上限 %d 段）(group inheritance %d levels deep; at most %d)", g.Member, depth, MaxGroupDepth, depth, MaxGroupDepth)
	}
	if len(errs) > 0 {
		// Configuration errors first, then the file's in line order.
		sort.SliceStable(errs, func(i, j int) bool { return errLine(errs[i]) < errLine(errs[j]) })
		if len(errs) > maxErrors {
			errs = errs[:maxErrors]
		}
		return nil, errors.Join(errs...)
	}

	// Casbin: the model and the role manager.
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("loading the builtin Casbin model: %w", err)
	}
	e, err := casbin.NewEnforcer(m, &fileAdapter{f: f})
	if err != nil {
		return nil, fmt.Errorf("loading policy %s into Casbin: %w", name, err)
	}
	e.EnableLog(false)
	c.enforcer = e
	for _, g := range f.Groups {
		if _, done := c.ancestors[g.Member]; done {
			continue
		}
		roles, err := e.GetImplicitRolesForUser(g.Member)
		if err != nil {
			return nil, fmt.Errorf("resolving the roles of %s: %w", g.Member, err)
		}
		c.ancestors[g.Member] = roles
	}

	for _, r := range f.Rules {
		for _, s := range r.Subjects {
			bySub := c.index[s]
			if bySub == nil {
				bySub = map[string][]*Rule{}
				c.index[s] = bySub
			}
			for _, o := range r.Objects {
				if !slices.Contains(bySub[o], r) {
					bySub[o] = append(bySub[o], r)
				}
			}
		}
	}
	return c, nil
}

// MaxGroupDepth is how many group levels inheritance follows: Casbin's
// role manager stops there, so deeper chains are refused rather than
// silently cut.
const MaxGroupDepth = 10

// groupDepth returns the longest inheritance chain (in group lines) and
// the group line that starts it. The groups must have no cycle.
func groupDepth(groups []Group) (Group, int) {
	parents := map[string][]string{}
	for _, g := range groups {
		parents[g.Member] = append(parents[g.Member], g.Parent)
	}
	memo := map[string]int{}
	var depth func(string) int
	depth = func(n string) int {
		if d, ok := memo[n]; ok {
			return d
		}
		best := 0
		for _, p := range parents[n] {
			best = max(best, 1+depth(p))
		}
		memo[n] = best
		return best
	}
	var deepest Group
	most := 0
	for _, g := range groups {
		if d := depth(g.Member); d > most {
			deepest, most = g, d
		}
	}
	return deepest, most
}

// groupCycle returns a group line that closes a cycle, or nil.
func groupCycle(groups []Group) *Group {
	parents := map[string][]int{}
	for i, g := range groups {
		parents[g.Member] = append(parents[g.Member], i)
	}
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var found *Group
	var visit func(string)
	visit = func(n string) {
		state[n] = visiting
		for _, i := range parents[n] {
			if found != nil {
				return
			}
			p := groups[i].Parent
			switch state[p] {
			case visiting:
				found = &groups[i]
				return
			case 0:
				visit(p)
			}
		}
		state[n] = done
	}
	names := make([]string, 0, len(parents))
	for n := range parents {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if state[n] == 0 {
			visit(n)
		}
		if found != nil {
			return found
		}
	}
	return nil
}

// fileAdapter hands a parsed policy file to Casbin. It is read-only: the
// file is the source of truth, edited by people, never by the engine.
type fileAdapter struct{ f *File }

var _ persist.Adapter = (*fileAdapter)(nil)

func (a *fileAdapter) LoadPolicy(m model.Model) error {
	for _, r := range a.f.Rules {
		conds := make([]string, len(r.Conds))
		for i, c := range r.Conds {
			conds[i] = c.String()
		}
		cond := strings.Join(conds, "&")
		for _, s := range r.Subjects {
			for _, o := range r.Objects {
				for _, act := range r.Actions {
					line := []string{"p", s, o, act, r.Effect.String(), cond, r.pos}
					if err := persist.LoadPolicyArray(line, m); err != nil {
						return fmt.Errorf("%s: %w", r.pos, err)
					}
				}
			}
		}
	}
	for _, g := range a.f.Groups {
		if err := persist.LoadPolicyArray([]string{"g", g.Member, g.Parent}, m); err != nil {
			return fmt.Errorf("%s:%d: %w", a.f.Name, g.Line, err)
		}
	}
	return nil
}

var errReadOnly = errors.New("policy: the file adapter is read-only; edit the policy file")

func (a *fileAdapter) SavePolicy(model.Model) error                              { return errReadOnly }
func (a *fileAdapter) AddPolicy(string, string, []string) error                  { return errReadOnly }
func (a *fileAdapter) RemovePolicy(string, string, []string) error               { return errReadOnly }
func (a *fileAdapter) RemoveFilteredPolicy(string, string, int, ...string) error { return errReadOnly }

func errLine(err error) int {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Line
	}
	return -1
}
