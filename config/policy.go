package config

import "time"

// Policy selects and tunes the policy engine. Owned by package policy; see
// docs/policy.md.
type Policy struct {
	// Model is "builtin" (default): sekisho's shipped Casbin model.
	Model string `yaml:"model"`
	// File is the policy file. Default policy.csv beside the config.
	File string `yaml:"file"`
	// Profile names the model profile the policy was written from
	// (alpha, alpha-prime, beta, beta-prime); informational.
	Profile string `yaml:"profile"`
	// Timezone for office-hours rules. Default Asia/Tokyo.
	Timezone string         `yaml:"timezone"`
	Location *time.Location `yaml:"-"`
}
