package policy

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/sekisho/sekisho/config"
)

// Target is what a route name, method and path resolve to, as the proxy
// resolves them: the route's class, segment and mode, overridden by the
// longest matching path prefix, and the action from the method (read for
// GET, HEAD and OPTIONS, write otherwise) unless the prefix names one.
type Target struct {
	Route, Class, Segment, Action, Mode string
	// Prefix is the path rule that matched, "" for the route's defaults.
	Prefix string
}

// AdminTarget is how the gateway decides every request to the admin
// console (/.sekisho/admin/ on any routed host): route "admin", action
// "admin", class 3A, always enforced, whatever the method and path.
var AdminTarget = Target{Route: RouteAdmin, Class: "3A", Action: "admin", Mode: "enforce"}

// Resolve finds route by name in cfg and resolves method and path on it.
// The reserved route "admin" resolves to [AdminTarget].
func Resolve(cfg *config.Config, route, method, path string) (Target, error) {
	if route == RouteAdmin {
		return AdminTarget, nil
	}
	var rt *config.Route
	for i := range cfg.Routes {
		if cfg.Routes[i].Name == route {
			rt = &cfg.Routes[i]
			break
		}
	}
	if rt == nil {
		return Target{}, fmt.Errorf("ルート %q は設定にありません (route %q is not configured)", route, route)
	}
	t := Target{Route: rt.Name, Class: rt.Class, Segment: rt.Segment, Mode: rt.Mode}
	if t.Mode == "" {
		t.Mode = "enforce"
	}
	if path == "" {
		path = "/"
	}
	paths := append([]config.PathRule(nil), rt.Paths...)
	sort.SliceStable(paths, func(i, j int) bool { return len(paths[i].Prefix) > len(paths[j].Prefix) })
	match := path
	if rt.CaseInsensitive {
		match = strings.ToLower(path)
	}
	for _, p := range paths {
		pre := p.Prefix
		if rt.CaseInsensitive {
			pre = strings.ToLower(pre)
		}
		if strings.HasPrefix(match, pre) {
			t.Prefix = p.Prefix
			if p.Class != "" {
				t.Class = p.Class
			}
			t.Action = p.Action
			if p.Mode != "" {
				t.Mode = p.Mode
			}
			break
		}
	}
	if t.Action == "" {
		switch strings.ToUpper(method) {
		case "", "GET", "HEAD", "OPTIONS":
			t.Action = "read"
		default:
			t.Action = "write"
		}
	}
	return t, nil
}

// ZoneOf returns the first configured zone containing ip, or "external".
func ZoneOf(cfg *config.Config, ip netip.Addr) string {
	ip = ip.Unmap()
	for _, z := range cfg.Zones {
		for _, p := range z.Prefixes {
			if p.Contains(ip) {
				return z.Name
			}
		}
	}
	return "external"
}
