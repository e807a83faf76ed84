// Package monitor watches sekisho's decision stream and raises alerts a
// CSIRT can act on (監視機能, required by the 令和6年10月 guideline for the
// β and β′ models).
//
// # The stream
//
// Every audit record the gateway appends is handed to [Monitor.Observe]
// right after the append. Observe copies the record into a bounded queue
// and returns; it never blocks the request path. [Monitor.Run] applies the
// rules on its own goroutine. A full queue drops records, counts them in
// sekisho_monitor_dropped_total and raises monitor_overload.
//
// # Rules
//
// Each rule has a severity and thresholds from the monitor: section of the
// configuration (config.Monitor), with shipped defaults:
//
//   - denial_burst: many denials for one user, device or source address in
//     a short window (probing);
//   - login_failure_burst: many failed logins for one user or address;
//   - bulk_read: one user reading far more distinct pages of a 3A/3B system
//     in an hour than a ceiling or their own baseline (an exponentially
//     weighted mean of their active hours);
//   - off_hours: 3A/3B reached outside office hours, on a weekend, or on a
//     closed day of the shipped Japanese calendar ([Holidays]);
//   - revoked_access: a revoked device or a disabled or revoked user still
//     trying;
//   - counter_regression: a passkey's signature counter went backwards;
//   - new_device, new_zone: a user on a device or network zone never seen
//     for them, once past a learning period;
//   - audit_failure: the trail or a sink failing ([Monitor.ReportHealth],
//     or a system record write_failed);
//   - monitor_overload: the monitor itself dropped records.
//
// # Alerts
//
// A second occurrence of the same rule for the same subject within the
// group window counts into the open [Alert] instead of raising a new one.
// When an alert opens it is written to the audit trail (event "alert",
// action the rule, target the subject, detail JSON with the summary and
// evidence request ids) through the sink given with [WithAlertSink],
// counted in sekisho_alerts_total{rule,severity}, and sent to the
// configured channels: syslog RFC 5424 over TCP or TLS, a webhook signed
// with HMAC-SHA256 ([Sign]), and e-mail over SMTP. Each channel has its own
// queue and retries with doubling backoff.
//
// # Restarts
//
// What the rules learn (baselines, known devices and zones, revocations)
// lives in memory. [Monitor.Warm] replays past records (audit.Query) before
// [Monitor.Run] so a restarted gateway compares at once; without it each
// user's first day is a learning period for new_device and new_zone.
//
// # Health
//
// [Monitor.ReportHealth] takes a failure from the caller;
// [WithHealthCheck] polls one (the trail's Healthy) every few seconds.
//
// # Automatic responses
//
// A rule may be configured to require step-up, or to revoke the session or
// the device, when its alert opens. The monitor calls the [Responder] given
// with [WithResponder] and audits the outcome; without one, nothing is
// done and the audit record says so.
package monitor
