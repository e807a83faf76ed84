package config

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
)

// ZoneOf returns the name of the first zone, in file order, whose prefixes
// contain ip, or [ZoneExternal]. IPv4-mapped IPv6 addresses count as IPv4.
func (c *Config) ZoneOf(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	for _, z := range c.Zones {
		for _, p := range z.Prefixes {
			if p.Contains(ip) {
				return z.Name
			}
		}
	}
	return ZoneExternal
}

// Route returns the route called name, or nil. The pointer is into c.Routes.
func (c *Config) Route(name string) *Route {
	for i := range c.Routes {
		if c.Routes[i].Name == name {
			return &c.Routes[i]
		}
	}
	return nil
}

// Class returns the class called name: the shipped default merged with
// the file's classes: section.
func (c *Config) Class(name string) (Class, bool) {
	cl, ok := c.Classes[name]
	return cl, ok
}

// Names returns the zone names in file order.
func (z Zones) Names() []string {
	names := make([]string, len(z))
	for i, zone := range z {
		names[i] = zone.Name
	}
	return names
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.SortedFunc(maps.Keys(m), cmp.Compare[string])
}
