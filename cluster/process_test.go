package cluster_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/apptest"
	"github.com/sekisho/sekisho/store/storetest"
)

// TestTwoServeProcesses runs two `sekisho serve` processes on one
// PostgreSQL schema, as a deployment does: a session made on A is
// accepted by B; `sekisho revoke` run against A's configuration makes B
// refuse it (the latency is measured); a policy pushed through A applies
// on B.
func TestTwoServeProcesses(t *testing.T) {
	needsBinaries(t)
	dsn := storetest.PostgresDSN(t)
	// The cluster harness writes the configurations, creates the users and
	// mints a session (keys live in the database, so the processes accept it).
	reps := apptest.StartCluster(t, apptest.ClusterOptions{DSN: dsn})
	cookie := reps[0].Login("suzuki", apptest.UV, time.Minute, "", "")
	for _, r := range reps {
		r.Stop()
	}

	bin := buildSekisho(t)
	ports := make([]int, len(reps))
	for i, r := range reps {
		_, ports[i] = startServe(t, bin, r)
	}
	get := func(port int, path string) int {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
		req.Host = "zaimu.gw.example.lg.jp"
		req.Header.Set("Accept", "text/html")
		req.AddCookie(&http.Cookie{Name: "__Host-sekisho", Value: cookie})
		client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitStatus := func(port int, path string, want int, within time.Duration) (time.Duration, bool) {
		start := time.Now()
		for time.Since(start) < within {
			if get(port, path) == want {
				return time.Since(start), true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start), false
	}
	for i, p := range ports {
		if _, ok := waitStatus(p, "/ledger", http.StatusOK, 20*time.Second); !ok {
			t.Fatalf("replica %d (port %d) does not accept the session made on A", i, p)
		}
	}

	// A policy pushed through A applies on B: class 2 is no longer allowed.
	newPolicy := filepath.Join(t.TempDir(), "policy.csv")
	if err := os.WriteFile(newPolicy, []byte("condition, 庁内, zone=chonai\ndeny, *, class:2, read|write, 庁内\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	push := exec.Command(bin, "policy", "push", "--config", filepath.Join(reps[0].Dir, "sekisho.yaml"), newPolicy)
	if out, err := push.CombinedOutput(); err != nil {
		t.Fatalf("policy push: %v\n%s", err, out)
	}
	if d, ok := waitStatus(ports[1], "/ledger", http.StatusForbidden, 5*time.Second); !ok {
		t.Fatalf("B still allows class 2 %v after the push through A", d)
	} else {
		t.Logf("policy pushed through A in force on B after %v", d.Round(time.Millisecond))
	}

	// `sekisho revoke` against A's configuration: B refuses the session.
	start := time.Now()
	rev := exec.Command(bin, "revoke", "--config", filepath.Join(reps[0].Dir, "sekisho.yaml"), "--user", "suzuki", "--reason", "test")
	rev.Dir = reps[0].Dir
	if out, err := rev.CombinedOutput(); err != nil {
		t.Fatalf("sekisho revoke: %v\n%s", err, out)
	}
	cli := time.Since(start)
	d, ok := waitStatus(ports[1], "/ledger", http.StatusSeeOther, 5*time.Second)
	if !ok {
		t.Fatalf("B still accepts the revoked session after %v", d)
	}
	t.Logf("revocation by `sekisho revoke` (CLI took %v) refused on B %v after the CLI returned", cli.Round(time.Millisecond), d.Round(time.Millisecond))
	if d > time.Second {
		t.Errorf("revocation reached B after %v, want < 1s", d)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
