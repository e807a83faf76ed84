// Package audit is sekisho's tamper-evident audit trail: it records who
// reached which asset class, when, from where, on which device, with which
// authentication, and whether it was allowed — and proves that nobody edited
// the answer afterwards.
//
// # Records
//
// A [Record] is one JSON object per line with the fields of DESIGN §4 in a
// fixed order. The canonical encoding (canonical.go) is frozen: auditors
// re-implement it to verify a trail without sekisho (docs/audit.md).
// Values of query parameters named in config.Audit.Redact are replaced by
// [Redacted] before anything is written.
//
// # Chain and checkpoints
//
// Every record carries prev (the previous record's hash; [Genesis] for the
// first) and hash (SHA-256 of its own encoding without hash). Every
// CheckpointEvery records, every CheckpointInterval while records arrive,
// at open and at a clean Close, the trail writes a checkpoint record whose
// JWS (ES256, the audit key) signs the sequence number and hash of the chain
// head. Editing, inserting, deleting or reordering records breaks the chain
// or a signed checkpoint; cutting the tail is caught against checkpoint.jws,
// the newest checkpoint kept beside the files. [Trail.PublicJWKS] and
// [PublicJWKS] export the public key for verifiers; [RotateKey] replaces the
// key and keeps the retired public key so older checkpoints still verify.
//
// # Writing
//
// [Open] recovers the chain head from the files, seals a torn last line left
// by a crash with a system record (never dropping or merging it), and starts
// one writer goroutine. [Trail.Append] queues; [Trail.AppendDurable] waits
// for the fsync of the group its record was written in, so many concurrent
// callers share one fsync (group commit). When the disk fails, the trail
// turns unhealthy: appends return errors wrapping [ErrUnhealthy] (the proxy
// then fails closed), the metrics sekisho_audit_healthy and
// sekisho_audit_write_errors_total raise the alarm, and a retry loop
// resumes from the last fsync and records the outage.
//
// Files are named audit-YYYYMMDD-NNNN.jsonl (UTC day, number); they rotate
// by size and by day, the chain runs on across them, and files older than
// Retention (default one year) are removed after a system record names
// them and the chain head at the cut.
//
// # Sinks
//
// A syslog sink (RFC 5424 over TCP or TLS, octet counting) follows the
// files from a remembered position, so an outage of the receiver never
// blocks the trail and is caught up afterwards.
//
// # Reviewing
//
// [Verify] checks a whole trail and names the first bad record. [Query]
// iterates records that match a [Filter]; [BuildReport] makes the summary an
// auditor files (decisions by class, zone and hour; denials; shadow-mode
// would-denies; off-hours access to 3A/3B; revoked devices and disabled
// users that still tried; an incident timeline).
package audit
