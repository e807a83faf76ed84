package cluster_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sekisho/sekisho/authn/authntest"
	"github.com/sekisho/sekisho/internal/apptest"
	"github.com/sekisho/sekisho/store/storetest"
)

// TestKubernetesConfigWithoutCluster runs the configuration of
// examples/kubernetes (the ConfigMap's sekisho.yaml and policy.csv, as many
// `sekisho serve` processes as the Deployment has replicas, on one
// PostgreSQL schema) without a Kubernetes cluster, which this machine does
// not have. What Kubernetes would provide is made by the operator's own
// commands (certs init, certs server, audit key) or replaced: mounted
// paths, listen ports, the database DSN, the upstream Service, and the
// 庁内 zone, which gains 127.0.0.0/8 because the test's browser is local.
// Every substitution must still match the example. The probes the
// Deployment declares answer on each replica, a passkey registered on the
// first replica signs in on the last, and every replica serves the
// session.
func TestKubernetesConfigWithoutCluster(t *testing.T) {
	needsBinaries(t)
	dsn := storetest.PostgresDSN(t)
	bin := buildSekisho(t)
	raw, err := os.ReadFile("../examples/kubernetes/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	rawDep, err := os.ReadFile("../examples/kubernetes/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var dep struct {
		Spec struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(rawDep, &dep); err != nil || dep.Spec.Replicas < 2 {
		t.Fatalf("deployment.yaml: replicas %d, %v", dep.Spec.Replicas, err)
	}

	// The operator's part: device CA, server certificate, shared audit key.
	shared := t.TempDir()
	operator := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = shared
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sekisho %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	operator("certs", "init", "--dir", "ca")
	operator("certs", "server", "--dir", "ca", "--host", "zaimu.gw.example.lg.jp", "--out", "tls")
	if err := os.WriteFile(filepath.Join(shared, "policy.csv"), []byte(cm.Data["policy.csv"]), 0o600); err != nil {
		t.Fatal(err)
	}
	up := startUpstream(t)

	n := dep.Spec.Replicas
	https := make([]int, n)
	metrics := make([]int, n)
	cfgs := make([]string, n)
	for i := range n {
		dir := t.TempDir()
		https[i], metrics[i] = freePort(t), freePort(t)
		text := cm.Data["sekisho.yaml"]
		text = substitute(t, "the ConfigMap's sekisho.yaml", text, [][2]string{
			{`listen: ":8443"`, fmt.Sprintf(`listen: "127.0.0.1:%d"`, https[i])},
			{`metrics_listen: ":9090"`, fmt.Sprintf(`metrics_listen: "127.0.0.1:%d"`, metrics[i])},
			{`/etc/sekisho/tls/tls.crt`, filepath.Join(shared, "tls.pem")},
			{`/etc/sekisho/tls/tls.key`, filepath.Join(shared, "tls-key.pem")},
			{`/etc/sekisho/config/device-ca.pem`, filepath.Join(shared, "ca", "ca.pem")},
			{`/etc/sekisho/config/policy.csv`, filepath.Join(shared, "policy.csv")},
			{`/etc/sekisho/secret/audit.key`, filepath.Join(shared, "audit.key")},
			{`/var/lib/sekisho/audit`, filepath.Join(dir, "audit")},
			{`dsn: "postgres://sekisho@postgres.db.svc:5432/sekisho?sslmode=verify-full&sslrootcert=/etc/sekisho/secret/pg-ca.pem&pool_max_conns=10"`, fmt.Sprintf("dsn: %q", dsn)},
			{`upstream: http://zaimu.apps.svc:8080`, "upstream: " + up},
			{`chonai:   [10.1.0.0/16]`, `chonai:   [10.1.0.0/16, 127.0.0.0/8]`},
		})
		cfgs[i] = filepath.Join(dir, "sekisho.yaml")
		if err := os.WriteFile(cfgs[i], []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	operator("audit", "key", "--config", cfgs[0], "--create")
	if _, err := os.Stat(filepath.Join(shared, "audit.key")); err != nil {
		t.Fatalf("audit key --config did not create the shared key: %v", err)
	}
	for i := range n {
		start(t, filepath.Dir(cfgs[i]), bin, "serve", "--config", cfgs[i])
	}

	// The Deployment's probes: /healthz (startup, liveness) and /readyz.
	for i := range n {
		for _, path := range []string{"/healthz", "/readyz"} {
			waitFor(t, fmt.Sprintf("replica %d %s", i, path), 20*time.Second, func() bool {
				resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", metrics[i], path))
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			})
		}
	}

	// Staff and a passkey through the first replica; sign-in on the last.
	operator("users", "add", "--config", cfgs[0], "--id", "sato", "--name", "佐藤 花子", "--roles", "財務")
	link, err := url.Parse(strings.TrimSpace(firstLine(operator("users", "invite", "--config", cfgs[0], "--id", "sato"))))
	if err != nil || link.Query().Get("token") == "" {
		t.Fatalf("users invite printed %v", link)
	}
	pem, err := os.ReadFile(filepath.Join(shared, "ca", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	origin := "https://zaimu.gw.example.lg.jp" // public_port 443 behind the load balancer
	tc := &tls.Config{RootCAs: pool, ServerName: "zaimu.gw.example.lg.jp"}
	auth := authntest.New()
	apptest.NewBrowser(t, origin, tc).Register(https[0], link.Query().Get("token"), auth)
	last := apptest.NewBrowser(t, origin, tc)
	if st, res := last.SignIn(https[n-1], https[n-1], auth, authntest.Overrides{}); st != http.StatusOK {
		t.Fatalf("login on the last replica with the passkey registered on the first: %d %s", st, res)
	}
	for i := range n {
		if st, page := last.Get(https[i], "/"); st != http.StatusOK || !strings.Contains(string(page), "user=sato") {
			t.Errorf("replica %d answered %d %q, want the upstream page for sato", i, st, page)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// startUpstream is an internal system that names the user sekisho
// asserted.
func startUpstream(t *testing.T) string {
	t.Helper()
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream path=%s user=%s", r.URL.Path, r.Header.Get("X-Sekisho-User"))
	}))
	return srv
}
