package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sekisho/sekisho/config"
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

// TestProfilesWithExampleConfig loads profiles/example.yaml with the real
// configuration loader, so the sample configuration shipped beside the
// profiles is the one their cases hold for.
func TestProfilesWithExampleConfig(t *testing.T) {
	for _, name := range ProfileNames {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "policy.csv"), []byte(profileText(t, name)), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(filepath.Join(dir, "sekisho.yaml"), ExampleConfig())
			if err != nil {
				t.Fatalf("example.yaml: %v", err)
			}
			e, err := New(cfg, WithLogger(discardLogger()))
			if err != nil {
				t.Fatal(err)
			}
			data, _ := ProfileCases(name)
			cs, err := ParseCases("cases.yaml", data)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range cs.Run(e, cfg, wedMorning) {
				if r.Failed() {
					t.Errorf("%s: %v %s", r.Case.Name, r.Err, r.Diff)
				}
			}
		})
	}
}
