// Package session signs and verifies sekisho's session cookie and the
// assertion sent to upstream apps, and keeps the revocation list.
//
// Package authn runs the WebAuthn ceremonies and calls [Manager.Issue] once
// a user has authenticated; package proxy, through authn, calls
// [Manager.Verify] on every request and [Manager.Assertion] before
// forwarding.
//
// # The session cookie
//
// A session is a JWT signed with ES256 under a key named by kid, carried
// in the cookie "__Host-sekisho" (Secure, HttpOnly, SameSite=Lax, Path=/).
// It carries who (sub), the session id (jti), how the user authenticated
// ([Claims.AMR]: hwk, user, uv, mtls), when (auth_time), its absolute
// lifetime (iat, exp: cfg.Session.Lifetime) and when it was last reissued
// (for the idle timeout cfg.Session.Idle), and the device certificate
// presented at login. It never carries roles or department: those are read
// from the store on each request, so a personnel transfer applies on the
// next request.
//
// [Manager.Verify] accepts only ES256 signatures by one of the session
// keys, with typ "sekisho-session+jwt", our iss and the audience
// "sekisho-session", and exp, iat, jti and sub present. Everything else —
// alg "none", HMAC signed with the public key, an unknown kid, an upstream
// assertion, the JSON serialization — is [ErrInvalid]. A verified token is
// cached (bounded LRU) until it expires, but expiry, the idle timeout,
// revocation and device binding are checked on every call, in memory.
//
// The idle timeout slides: when [Manager.NeedsRefresh] says so (LastSeen
// older than a minute) the caller reissues the cookie with
// [Manager.Issue], which keeps the session id and absolute expiry.
//
// # Device binding
//
// With cfg.Session.Bound() (the default), a session begun with a device
// certificate is refused ([ErrDeviceMismatch]) on a request that does not
// present that same certificate: a stolen cookie is useless without the
// device's private key.
//
// # Keys
//
// Signing keys (ECDSA P-256) live in the store, so replicas share them;
// the first replica to start creates them. Session cookies and assertions
// have separate keys. A key signs for cfg.Session.KeyRotation (its
// store.Key.NotAfter) and keeps verifying until every token it signed has
// expired. Its successor is written to the store a while before it starts
// signing, so that every replica knows it in time; a replica that meets an
// unknown kid reloads the keys (at most once a second). A day after a key
// has stopped verifying, a replica's key refresh deletes it from the store
// (each replica tries at most once an hour), so that private keys do not
// outlive their use.
//
// # Revocation
//
// [Manager.Revoke] stores a revocation and applies it locally at once.
// [Manager.Run] polls the store every 250 ms (and reacts at once to a
// store that implements [store.Notifier]), so every replica refuses a
// revoked session within a second. A session is revoked by its id, or by
// its user, its device or "all" with a revocation made at or after the
// session began.
//
// # Upstream assertions
//
// [Manager.Assertion] signs the X-Sekisho-Assertion JWT (DESIGN.md §4):
// iss, aud (the route), sub, iat, exp (cfg.Session.AssertionLifetime), jti,
// amr, roles, device, class and zone, kid in the header. Upstream apps
// verify it against [Manager.JWKS], served at
// /.well-known/sekisho/jwks.json.
package session
