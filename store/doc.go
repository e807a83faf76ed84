// Package store keeps what the gateway shares between requests and
// between replicas: staff accounts, passkeys, devices, enrollment
// invitations, session records, revocations and signing keys. The
// contract is the [Store] interface; callers never see SQL.
//
// # Choosing a store
//
// [Open] takes the configuration's store.driver and store.dsn:
//
//   - "sqlite" (the default): one embedded database file, by default
//     data/sekisho.db ([DefaultSQLitePath]), through pure-Go SQLite (no
//     cgo). For one gateway process. See [SQLite].
//   - "postgres": a PostgreSQL database shared by several replicas. The
//     DSN is a pgx connection string; tables live in the first schema of
//     its search_path. See [Postgres].
//
// Both pass the same conformance suite, package
// github.com/sekisho/sekisho/store/storetest, so callers may rely on
// exactly what it checks and on nothing else.
//
// # Migrations
//
// The schema is versioned: numbered files under migrations/sqlite and
// migrations/postgres, embedded in the binary, applied in order by Open,
// each in its own transaction and recorded in the schema_migrations
// table. SQLite re-checks the table inside an IMMEDIATE transaction;
// PostgreSQL holds pg_advisory_lock for the schema while migrating, so
// replicas starting at the same moment apply each migration once. A new
// change is a new file with the next number; an applied file is never
// edited.
//
// # Errors
//
// Methods wrap the sentinel errors [ErrNotFound], [ErrExists] and
// [ErrInvitationUsed]; test for them with errors.Is. Any other error is a
// failure of the database and should be treated as "try again later",
// never as a denial or an approval.
//
// # Times
//
// Times come back in UTC, truncated to [Precision] (a microsecond, what
// PostgreSQL keeps). The zero time is stored as NULL and comes back zero.
// A create or update whose CreatedAt, UpdatedAt, LastUsedAt or At the
// caller left zero gets the store's clock ([WithClock]); expiry and
// validity checks (ConsumeInvitation, PeekInvitation) use the now the
// caller passes, never the database's clock.
//
// # Concurrency
//
// Every store is safe for concurrent use. ConsumeInvitation is one
// conditional UPDATE, so of any number of concurrent callers, across
// processes or replicas, exactly one gets the invitation and the others
// get ErrInvitationUsed. AddRevocation assigns Seq strictly increasing in
// commit order, so a replica that remembers the last Seq it applied and
// asks RevocationsSince(seq) never misses one.
//
// # Change notification
//
// Stores implement [Notifier]: Subscribe returns a channel of [Change]
// values (a revocation with its Seq, a user, device or key id, a policy
// change someone published). A change is a hint to reload from the
// store, not the data itself. [Postgres] sends each change with
// pg_notify in the writing transaction, so every replica hears it right
// after commit (about a millisecond on one host) and never hears of a
// rolled-back write; its listener reconnects on its own and then sends
// [ChangeResync], because notifications sent while it was away are lost.
// [SQLite] broadcasts only within its own process. A subscriber that
// falls behind also gets ChangeResync instead of what it missed. A
// replica should still poll RevocationsSince now and then, so that a
// lost notification delays a revocation rather than dropping it.
package store
