package cluster_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sekisho/sekisho/internal/apptest"
	"github.com/sekisho/sekisho/policy"
	"github.com/sekisho/sekisho/store/storetest"
)

// A version stored without a notification (the announcing connection
// died, or the replica's listener was reconnecting) is still installed:
// replicas check the table periodically.
func TestReplicasFindAPolicyVersionTheyWereNotToldAbout(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	reps := apptest.StartCluster(t, apptest.ClusterOptions{DSN: dsn})
	ctx := t.Context()
	db, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stricter := strings.Replace(apptest.DefaultPolicy, "allow,  *,              class:2,     read|write, 庁内\n", "", 1)
	v, err := policy.NewPGPolicy(db).Push(ctx, reps[0].App.Config, "policy.csv", []byte(stricter), "tanaka")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, r := range reps {
		waitFor(t, "replica "+r.Name+" to install the silent version", 5*time.Second, func() bool { return r.Cluster.PolicyVersion() == v.Version })
	}
	t.Logf("version %d found by periodic check after %v", v.Version, time.Since(start))
	tok := reps[1].Login("suzuki", apptest.UV, 0, "", "")
	if got := reps[1].Get(zaimu, "/", tok, nil); got.Status != http.StatusForbidden {
		t.Errorf("under the silent version: %d, want 403", got.Status)
	}

	// A replica that starts later comes up with the newest version, not
	// with its own file.
	late := apptest.StartCluster(t, apptest.ClusterOptions{DSN: dsn, Replicas: 1, SkipUsers: true})[0]
	if late.Cluster.PolicyVersion() != v.Version {
		t.Errorf("a replica started later runs version %d, want %d", late.Cluster.PolicyVersion(), v.Version)
	}
	if got := late.Get(zaimu, "/", tok, nil); got.Status != http.StatusForbidden {
		t.Errorf("late replica: %d, want 403 under version %d", got.Status, v.Version)
	}
}
