package proxy

import (
	"net/http"
	"sort"
	"strings"

	"github.com/sekisho/sekisho/config"
)

// target is what a request resolves to: the route and, below a path
// prefix, its class, action and mode overrides.
type target struct {
	route   *routeState
	class   string
	action  string // "" = from the method
	mode    string
	matched string // the prefix that matched, "" for the route default
}

// router maps host, then the longest path prefix, to a target. It is built
// whole from a configuration and never modified.
type router struct {
	hosts map[string]*routeState
}

type pathEntry struct {
	prefix string // lower-cased when the route is case-insensitive
	rule   config.PathRule
}

func newRouter(routes []*routeState) *router {
	r := &router{hosts: make(map[string]*routeState, len(routes))}
	for _, rs := range routes {
		r.hosts[rs.cfg.Host] = rs
	}
	return r
}

// lookup resolves host (lower-case, no port) and a normalised path.
// ok is false for an unknown host: such requests get 404, never a default
// upstream.
func (r *router) lookup(host, path string) (target, bool) {
	rs, ok := r.hosts[host]
	if !ok {
		return target{}, false
	}
	t := target{route: rs, class: rs.cfg.Class, mode: rs.cfg.Mode}
	match := path
	if rs.cfg.CaseInsensitive {
		match = strings.ToLower(path)
	}
	// Plain string prefixes, longest first: "/export" also covers
	// "/export.csv" and "/export;x", which is the conservative reading.
	for _, p := range rs.paths {
		if strings.HasPrefix(match, p.prefix) {
			t.matched = p.rule.Prefix
			if p.rule.Class != "" {
				t.class = p.rule.Class
			}
			if p.rule.Action != "" {
				t.action = p.rule.Action
			}
			if p.rule.Mode != "" {
				t.mode = p.rule.Mode
			}
			break
		}
	}
	return t, true
}

func sortedPaths(rt *config.Route) []pathEntry {
	out := make([]pathEntry, 0, len(rt.Paths))
	for _, p := range rt.Paths {
		pre := p.Prefix
		if rt.CaseInsensitive {
			pre = strings.ToLower(pre)
		}
		out = append(out, pathEntry{prefix: pre, rule: p})
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].prefix) > len(out[j].prefix) })
	return out
}

// actionOf maps a method to the policy action: read for safe methods,
// write for the rest, unless a path rule named export or admin.
func actionOf(method, override string) string {
	if override != "" {
		return override
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return "read"
	}
	return "write"
}
