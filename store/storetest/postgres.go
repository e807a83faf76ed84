package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv names the environment variable holding the test database's
// connection string.
const PostgresEnv = "SEKISHO_TEST_POSTGRES"

// PostgresDSN returns a connection string for a new, empty schema
// (sekisho_test_<unix time>_<random>) in the database named by $SEKISHO_TEST_POSTGRES,
// with search_path set to it; the schema is dropped when the test ends.
// Tests in parallel packages therefore never see each other's tables;
// schemas left over by killed runs are dropped after an hour. If
// the variable is unset or the database unreachable the test is skipped,
// or fails when $CI is "true".
func PostgresDSN(t testing.TB) string {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL required in CI: "+format, args...)
		}
		t.Skipf("PostgreSQL unavailable: "+format, args...)
	}
	base := os.Getenv(PostgresEnv)
	if base == "" {
		unavailable("%s is not set", PostgresEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		unavailable("connecting to %s: %v", PostgresEnv, err)
	}
	defer conn.Close(context.Background())
	dropStaleSchemas(ctx, conn)
	b := make([]byte, 6)
	rand.Read(b)
	schema := fmt.Sprintf("sekisho_test_%d_%s", time.Now().Unix(), hex.EncodeToString(b))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating test schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping test schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping test schema %s: %v", schema, err)
		}
	})
	return withSearchPath(base, schema)
}

// staleAfter is the age after which a test schema left by a killed run is
// dropped by the next run.
const staleAfter = time.Hour

// dropStaleSchemas drops test schemas whose creation time, in their name,
// is older than staleAfter. Best effort: errors are ignored.
func dropStaleSchemas(ctx context.Context, conn *pgx.Conn) {
	rows, err := conn.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'sekisho\_test\_%'`)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, n := range names {
		ts, _, ok := strings.Cut(strings.TrimPrefix(n, "sekisho_test_"), "_")
		sec, err := strconv.ParseInt(ts, 10, 64)
		if !ok || err != nil || time.Since(time.Unix(sec, 0)) < staleAfter {
			continue
		}
		conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{n}.Sanitize()+" CASCADE")
	}
}

// withSearchPath adds search_path=schema to a URL or key=value DSN.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}
