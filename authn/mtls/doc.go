// Package mtls verifies device client certificates at the gateway: only
// PCs issued by the city hold a certificate that passes, and the
// certificate names the device.
//
// # How the proxy uses it
//
// The TLS listener asks for a certificate without requiring one
// (tls.RequestClientCert, with [Verifier.ClientCAs] as the list of
// acceptable issuers), so a handshake never fails because a certificate is
// missing or bad: the gateway can still answer with a page that says why.
// Per request the proxy calls [Verifier.Verify] with
// tls.ConnectionState.PeerCertificates and gets a [Device] or an error
// wrapping one of the sentinels ([ErrUntrusted], [ErrExpired],
// [ErrNotYetValid], [ErrRevoked], [ErrUsage], [ErrNoDeviceID],
// [ErrOCSPUnavailable], [ErrNoCertificate]). [Reason] gives safe Japanese
// and English words for the error page; [Code] a short code for audit
// records.
//
// # What is checked
//
//   - The chain: from the leaf through the intermediates the client
//     presented to a certificate in server.client_ca. Every certificate in
//     those bundles is a trust anchor, so an issuing CA may be listed alone.
//   - Validity at the verifier's clock, for every certificate in the chain.
//   - Extended key usage clientAuth, stated explicitly in the leaf (a leaf
//     with no extended key usage is refused), not a CA, digitalSignature
//     when key usage is present.
//   - Revocation by CRL (server.crl: PEM with one or more CRLs, or DER),
//     matched by issuer and serial. Each CRL must be signed by a certificate
//     in server.client_ca. The file is reloaded when it changes (fsnotify on
//     its directory, and a poll as fallback); a CRL that fails to load is
//     refused, logged, and the previous one stays in force. A CRL past its
//     nextUpdate is still enforced and logged as stale.
//   - Revocation by OCSP (server.ocsp.enabled) for leaves that name a
//     responder; answers are cached until their nextUpdate. An unreachable
//     responder refuses the certificate unless server.ocsp.fail_open; a
//     responder answering "unknown" always refuses it.
//   - The device id, read as config.Devices says (see below).
//
// # Device ids
//
// A certificate of sekisho's own CA (package certs) carries the device in
// a SAN URI urn:sekisho:device:<ID> and optionally the user in
// urn:sekisho:user:<ID>; such a certificate is always read that way. For an
// external CA (AD CS), devices.id_from chooses: san_uri (with
// devices.uri_prefix), san_dns (first DNS name, lower-cased), san_upn
// (Microsoft UPN otherName), san_email (first e-mail address, lower-cased)
// or cn (subject common name). An id with control characters, surrounding
// spaces or over 256 bytes is refused.
//
// # Cache
//
// Successful verifications are kept in a bounded LRU by the leaf's
// SHA-256 fingerprint, so the hot path is one hash and one map lookup. An
// entry lives at most the cache TTL (one minute by default), never past the
// chain's expiry or the OCSP answer's nextUpdate, and never past a CRL
// reload. Failures are not cached. A leaf served from the cache is not asked
// for its intermediates again: it was shown to chain to a client CA.
package mtls
