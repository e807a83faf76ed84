// Package cluster holds the tests of sekisho scaled out: several gateway
// replicas sharing one PostgreSQL database (docs/scale-out.md). It has no
// code of its own; the parts it exercises live in store (the shared state
// and LISTEN/NOTIFY), authn/session (shared keys, revocations), audit
// (PGShipper, QueryPostgres, VerifyPostgres), policy (policy_versions) and
// internal/app (cluster.go).
//
// # Replicas in one process
//
// The replicas are two app.App values in the test process, each with its
// own directory, listeners and audit trail, sharing a PostgreSQL schema of
// the test's own (storetest.PostgresDSN). Nothing is shared in memory
// between them except the Go runtime: sessions, revocations and policy
// reach the other replica only through the database, exactly as between
// processes. In-process replicas let the test measure revocation latency
// to the millisecond and cut the database with a TCP proxy goroutine.
//
// # What is measured
//
//   - A session issued on replica A is accepted on B.
//   - A revocation made on A is refused by B: polled every 10 ms, the
//     latency is logged and must stay under one second.
//   - A policy version published from A is in force on B within a second.
//   - With the database cut: sessions issued before keep working on both
//     replicas, revocations received before stay in force, the local audit
//     trails keep growing, new sessions cannot be issued; after the cut is
//     healed the central audit table holds every local record exactly
//     once.
//
// The tests need $SEKISHO_TEST_POSTGRES; they are skipped without it
// unless CI=true.
package cluster
