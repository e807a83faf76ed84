// Package ldaptest starts a real OpenLDAP server (Debian's slapd) for
// tests of LDAP and Active Directory sync.
//
// # The server
//
// [Start] writes a slapd.conf into a temporary directory (mdb database,
// core/cosine/inetorgperson schemas, a server certificate from a CA made
// for the test), loads [LDIF] with slapadd, and starts slapd on two free
// loopback ports: ldap:// (StartTLS offered) and ldaps://. Only the
// read-only account ReaderDN may read; anonymous clients see nothing. The
// server is killed when the test ends.
//
// # When slapd is missing
//
// The test is skipped, or fails when $CI is "true" (CI installs the
// packages slapd and ldap-utils).
package ldaptest
