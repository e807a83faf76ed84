package policy

import (
	"embed"
	"fmt"
	"slices"
)

// profileFS holds a commented policy and a cases file per network model,
// and the sample configuration they are written for.
//
//go:embed profiles
var profileFS embed.FS

// ProfileNames are the shipped model profiles (総務省ガイドラインの α, α′, β, β′).
var ProfileNames = []string{"alpha", "alpha-prime", "beta", "beta-prime"}

// Profile returns the shipped policy file for a model profile.
func Profile(name string) ([]byte, error) {
	if !slices.Contains(ProfileNames, name) {
		return nil, fmt.Errorf("プロファイル %q はありません。alpha, alpha-prime, beta, beta-prime のいずれかです (unknown profile %q)", name, name)
	}
	return profileFS.ReadFile("profiles/" + name + "/policy.csv")
}

// ProfileCases returns the shipped cases file for a model profile.
func ProfileCases(name string) ([]byte, error) {
	if !slices.Contains(ProfileNames, name) {
		return nil, fmt.Errorf("unknown profile %q", name)
	}
	return profileFS.ReadFile("profiles/" + name + "/cases.yaml")
}

// ExampleConfig returns the sample configuration (YAML) the profiles and
// their cases are written for.
func ExampleConfig() []byte {
	b, _ := profileFS.ReadFile("profiles/example.yaml")
	return b
}
