// Package authn authenticates staff with FIDO2/WebAuthn passkeys, never
// with passwords. It runs the registration and login ceremonies (with
// github.com/go-webauthn/webauthn), serves sekisho's own pages under
// /.sekisho/ (login, enrollment, account), and turns a request's session
// cookie into an [Identity] for the proxy.
//
// # Service
//
// [New] builds a [Service] from the configuration, the shared store and the
// session manager of package authn/session. The proxy mounts
// [Service.Handler] for /.sekisho/ (except /.sekisho/admin/) and
// /.well-known/sekisho/, and calls [Service.Identify] on every request,
// [Service.RequireLogin] or [Service.RequireStepUp] when the policy asks for
// a (fresher) login, and [Service.Assertion] to sign the identity it forwards
// upstream. Authentication events reach the proxy's audit trail through
// [WithEvents].
//
// # Enrollment
//
// An administrator creates a one-time invitation ([Service.Invite],
// [CreateInvitation], `sekisho users invite`): 32 random bytes whose SHA-256
// alone is stored. The user opens [EnrollURL], the page's script calls
// register/begin with the token and navigator.credentials.create, and
// register/finish verifies the attestation, applies the attestation policy
// (webauthn.allowed_aaguids, webauthn.refuse_backup_eligible), consumes the
// invitation atomically and stores the credential. Credentials are
// discoverable (residentKey required) so that login needs no user name.
//
// # Login and step-up
//
// login/begin starts a discoverable login; user verification is required
// unless webauthn.user_verification says otherwise, and always for a
// step-up (stepup=1). login/finish verifies the assertion against the
// stored public key, refuses a sign counter that did not advance (and marks
// the credential CloneWarning), and issues the session cookie whose amr
// lists hwk, user, uv as the authenticator flagged them, and mtls when the
// request came with a valid device certificate.
//
// # Ceremony state
//
// What begin hands to finish travels in a cookie sealed with AES-256-GCM
// under a key kept in the store (so any replica can finish it), bound to the
// origin the ceremony began at and expiring after
// webauthn.ceremony_timeout. Each challenge finishes at most once.
//
// # Protections
//
// Ceremony endpoints accept only same-origin JSON (Sec-Fetch-Site/Origin)
// and are rate limited per address and per user ([RateLimits]); account forms
// also carry a CSRF token bound to the session. Redirect targets after login
// are limited to configured route hosts (no open redirect). Pages are
// Japanese first (English by Accept-Language), served with a strict
// Content-Security-Policy and one script of sekisho's own.
package authn
