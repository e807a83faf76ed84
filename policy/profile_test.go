package policy

import (
	"testing"
)

// TestProfiles runs every shipped profile's cases file against the sample
// configuration: the same check as "sekisho policy test".
func TestProfiles(t *testing.T) {
	for _, name := range ProfileNames {
		t.Run(name, func(t *testing.T) {
			e, cfg := newEngine(t, profileText(t, name))
			data, err := ProfileCases(name)
			if err != nil {
				t.Fatal(err)
			}
			cs, err := ParseCases(name+"/cases.yaml", data)
			if err != nil {
				t.Fatal(err)
			}
			if len(cs.Cases) < 8 {
				t.Fatalf("%s has %d cases; every profile ships at least 8", name, len(cs.Cases))
			}
			for _, r := range cs.Run(e, cfg, wedMorning) {
				if r.Err != nil {
					t.Errorf("%v", r.Err)
				} else if r.Diff != "" {
					t.Errorf("%s (line %d):\n%s", r.Case.Name, r.Case.Line, r.Diff)
				}
			}
		})
	}
}
