// Package word reads strings eight bytes at a time, for the checks that
// skip plain runs of a header or a record a word at a time (authn's cookie
// value, audit's canonical strings).
package word

// Load64 reads the 8 bytes of s from i, little-endian: one load (the
// compiler combines the shifts). s must hold them.
func Load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
