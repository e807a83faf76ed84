package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// MarshalYAML writes zones as the file has them: a mapping of zone name to
// prefixes, in order. With it a [Config] marshalled by yaml.v3 (the demo
// writes its configuration that way) loads back with [Load].
func (z Zones) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, zone := range z {
		list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		for _, p := range zone.Prefixes {
			list.Content = append(list.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p.String()})
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: zone.Name}, list)
	}
	return n, nil
}

// UnmarshalYAML reads the zones mapping for callers that use yaml.v3
// directly. [Load] does not use it: it decodes zones itself, to report
// every problem with its line and key.
func (z *Zones) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: zones: want a mapping of zone name to prefixes", n.Line)
	}
	var zones Zones
	for i := 0; i+1 < len(n.Content); i += 2 {
		var texts []string
		if err := n.Content[i+1].Decode(&texts); err != nil {
			return fmt.Errorf("zones.%s: %w", n.Content[i].Value, err)
		}
		zone := Zone{Name: n.Content[i].Value}
		for _, s := range texts {
			p, err := ParsePrefix(s)
			if err != nil {
				return fmt.Errorf("line %d: zones.%s: %w", n.Content[i+1].Line, zone.Name, err)
			}
			zone.Prefixes = append(zone.Prefixes, p)
		}
		zones = append(zones, zone)
	}
	*z = zones
	return nil
}

var (
	_ yaml.Marshaler   = Zones(nil)
	_ yaml.Unmarshaler = (*Zones)(nil)
)
