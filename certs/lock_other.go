//go:build !unix

package certs

// lockDir is a no-op where flock is unavailable: on such systems only one
// process may change a CA at a time.
func lockDir(string) (func(), error) { return func() {}, nil }
