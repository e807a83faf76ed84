package directory

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/policy"
)

// KnownRoles returns the roles an import may assign: those listed in
// directory.roles plus every role the policy file names (role:R as a
// subject of a rule or on either side of a group line). A role nobody
// grants anything to is almost always a typing mistake, so it is refused
// unless directory.roles lists it.
func KnownRoles(cfg *config.Config) (Roles, error) {
	r := NewRoles(cfg.Directory.Roles...)
	path := policy.PolicyPath(cfg)
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) && len(r) > 0 {
			return r, nil
		}
		return nil, fmt.Errorf("reading role names from policy %s: %w", path, err)
	}
	f, err := policy.Parse(filepath.Base(path), data)
	if err != nil {
		return nil, fmt.Errorf("reading role names from policy %s: %w", path, err)
	}
	add := func(s string) {
		if name, ok := strings.CutPrefix(s, "role:"); ok && name != "" {
			r[name] = true
		}
	}
	for _, rule := range f.Rules {
		for _, s := range rule.Subjects {
			add(s)
		}
	}
	for _, g := range f.Groups {
		add(g.Member)
		add(g.Parent)
	}
	return r, nil
}

// Location returns the time zone in which effective dates begin:
// directory.timezone, default Asia/Tokyo.
func Location(cfg *config.Config) (*time.Location, error) {
	if cfg.Directory.Timezone == "" {
		return tokyo(), nil
	}
	loc, err := time.LoadLocation(cfg.Directory.Timezone)
	if err != nil {
		return nil, fmt.Errorf("directory.timezone %q: %w", cfg.Directory.Timezone, err)
	}
	return loc, nil
}

// Options returns the options the configuration sets: kept users, the
// disable limit and the scheduler interval.
func Options(cfg *config.Config) []Option {
	d := cfg.Directory
	opts := []Option{WithKeep(d.Keep...), WithInterval(d.CheckInterval)}
	if d.MaxDisable != 0 {
		opts = append(opts, WithMaxDisable(d.MaxDisable))
	}
	return opts
}

// resolve makes a relative file name from the configuration relative to
// the configuration file's directory.
func resolve(cfg *config.Config, name string) string {
	if name == "" || filepath.IsAbs(name) || cfg.Path == "" {
		return name
	}
	return filepath.Join(filepath.Dir(cfg.Path), name)
}
