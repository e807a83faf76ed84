// Package storetest is the conformance suite every [store.Store]
// implementation must pass, and the helper that gives tests a private
// PostgreSQL schema.
//
// # The suite
//
// An implementation's test calls [Run] with a function that opens a
// fresh, empty store. Run checks every method: round trips, the sentinel
// errors (store.ErrNotFound, store.ErrExists, store.ErrInvitationUsed),
// orderings, single use of an invitation under concurrent consumers,
// strictly increasing revocation Seq under concurrent writers, times
// returned in UTC at store.Precision, and, when the store implements
// them, store.Notifier and store.Pruner. What the suite checks is the
// contract callers may rely on.
//
// # PostgreSQL in tests
//
// [PostgresDSN] reads $SEKISHO_TEST_POSTGRES, creates a schema of the
// test's own and returns a DSN whose search_path points at it; the schema
// is dropped when the test ends. Without a reachable database the test
// is skipped, except under CI=true, where it fails.
package storetest
