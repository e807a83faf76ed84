// Package admin is sekisho's admin console: web pages for IT staff
// (情報政策課), auditors and CSIRT, served by the gateway itself under
// /.sekisho/admin/.
//
// # Who may use it
//
// The console does no authentication of its own. The gateway
// (proxy.WithAdmin) authenticates the request with a passkey session,
// decides it with the policy as route "admin", action "admin", class 3A,
// writes the access record, and only then calls [Console.ServeHTTP] with
// the request context ([reqctx.Info]) filled in. The console trusts that
// context for who is acting and refuses a request without a signed-in user
// (defence in depth; the gateway never sends one).
//
// # Forms
//
// Every state-changing request is a POST that must be same-origin
// ([net/http.CrossOriginProtection]) and carry a form token bound to the
// admin's session (HMAC-SHA256 with [Deps].CSRFKey). The kill switch takes
// two posts: the first answers a page that repeats what will happen, with
// a token bound to exactly that, and only the second acts. Every action
// writes an admin audit record (event "admin", action, target, detail with
// the reason, the acting user and request id) through [Deps].Record.
//
// # Pages
//
//   - / — the last 24 hours: decisions by class and result, by hour, top
//     denial reasons, shadow-mode would-denies per route, passkey coverage
//     the audit trail's verification status, and the monitoring alerts
//     (最近の警告), newest first. Charts are inline SVG laid out in Go; no
//     script, no chart library.
//   - /audit — the filters of `sekisho audit query`, newest first, each
//     record expandable; /audit.csv exports the same search (UTF-8 BOM).
//   - /timeline — every authentication and access of one user or device
//     in a window, printable; the monitor's alerts about that user or
//     device are marked rows among them.
//   - /users, /users/view — accounts, passkeys, devices, sessions; add,
//     disable, enable, invite (the enrollment URL is shown once).
//   - /devices — the device registry; isolate through the kill switch,
//     return to service.
//   - /revoke — the kill switch: a user, a device, a session or everyone.
//   - /policy — the policy in force and an explain form (the engine of
//     `sekisho policy explain`).
//
// # Wiring
//
// [New] takes plain values and functions ([Deps]): the store, the audit
// trail's directory, keys, Append and Healthy, the session manager's
// Revoke, the passkey service's Invite, the policy engine's Explain and
// Version, and a form-token key shared by replicas ([CSRFKeyFromStore]).
// See the example of [New].
//
// # Alerts and clusters
//
// Alerts are read from the audit trail (event "alert", written by package
// monitor with the summary in Japanese and English in the detail), not
// from the monitor's memory: the same on every replica and after a
// restart. The search, CSV export, timeline and overview read records
// through [Deps].Query; in a cluster it is the central table
// (audit.QueryPostgres), so a page shows every replica's records. Without
// it they read the local trail. Verification always checks the local
// trail's files.
//
// # Browser rules
//
// Pages work without JavaScript and are served with a strict content
// security policy (default-src 'none'; style-src 'self'; …); the one
// stylesheet is embedded and served under /static/. Pages are Japanese,
// or English when Accept-Language prefers it.
package admin
