// Package certs is sekisho's small device-certificate authority, for cities
// that have no PKI of their own. It knows nothing of the gateway: it writes
// files that the gateway (package authn/mtls) and the staff PCs read.
//
// # The CA directory
//
// [Init] creates a CA in a directory that should live on an offline or
// tightly held machine:
//
//   - ca.pem: the CA certificate (give it to the gateway as server.client_ca)
//   - ca-key.pem: the CA private key, PKCS#8, mode 0600 in a 0700 directory
//   - index.json: every certificate issued and revoked, and the CRL number
//   - issued/<serial>.pem: a copy of every issued certificate
//
// [Load] opens an existing CA and refuses a key file that group or others
// can read.
//
// # Issuing
//
// [CA.IssueDevice] issues a client certificate for one PC: the device id in
// a SAN URI urn:sekisho:device:<ID>, optionally the user in a second SAN URI
// urn:sekisho:user:<ID>, extended key usage clientAuth. It returns the
// certificate and key as PEM and as a PKCS#12 (.p12) file for import on
// Windows or macOS. [CA.IssueServer] issues the gateway's own TLS
// certificate. The profile is frozen in profile.go.
//
// # Revoking
//
// [CA.Revoke] and [CA.RevokeDevice] mark certificates revoked in the index;
// [CA.CRL] writes a signed CRL that the gateway reloads when the file
// changes.
//
// Serial numbers are random 128-bit integers written as lower-case hex
// without separators (see [FormatSerial]).
package certs
