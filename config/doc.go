// Package config loads, validates and documents sekisho's configuration
// file.
//
// # Loading
//
// [Load] reads one YAML file into a [Config]. Everything is parsed and
// checked once, here: durations, CIDR prefixes ([netip.Prefix]), upstream
// URLs, enumerations, host names, path prefixes, references between
// sections (a route's class must exist, a class's zones must exist). The
// rest of sekisho never parses configuration text.
//
// # Errors
//
// A file with mistakes gives an [*Errors] listing every problem, ordered by
// line, each as an [Error] with the file, line and key path:
//
//	sekisho.yaml:14: routes[1].upstream: "ftp://x": the scheme must be http or https (http または https の URL を指定してください)
//
// Unknown keys are errors anywhere in the file, so a misspelt key is never
// silently ignored. The decoder walks yaml.v3's node tree itself (rather
// than yaml.Node.Decode) so that it can name keys, keep going after the
// first error and refuse duplicate keys.
//
// # Defaults
//
// Keys left out get the defaults documented on each field of [Config] and
// listed in defaults.go. The information-asset classes 3A, 3B, 3C, 2 and 1
// are shipped as data ([DefaultClasses]); the file's classes: section
// overrides them field by field and may add more, because the 総務省
// guideline they follow is revised every 6–12 months.
//
// # File names
//
// Every relative file name (TLS certificate and key, client CAs, CRL, the
// SQLite database, the policy file, the audit directory and key, upstream
// and sink CAs) is resolved against the directory of the configuration
// file, so callers never join paths themselves.
//
// # Lookups
//
// [Config.ZoneOf] maps a source address to its zone, [Config.Route] and
// [Config.Class] find a route or class by name.
package config
