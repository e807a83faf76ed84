package config

import "fmt"

// Load reads, parses and validates the configuration file at path.
func Load(path string) (*Config, error) { return nil, fmt.Errorf("config: not implemented yet") }
