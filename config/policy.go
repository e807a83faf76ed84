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
	// Conditions are named conditions added to those the policy file
	// defines, written as in the file: name → tests separated by spaces,
	// e.g. "office_hours": "hours=08:30-17:15 days=mon-fri holiday=no".
	// A name defined in both places is an error. Empty: none.
	Conditions map[string]string `yaml:"conditions"`
	// Holidays are extra closed days (YYYY-MM-DD) for the "holiday" test,
	// added to the policy file's holiday lines. Empty: none.
	Holidays []string `yaml:"holidays"`
	// CacheSize bounds the decision cache (entries). Zero: 65536;
	// negative: no cache.
	CacheSize int `yaml:"cache_size"`
}
