package cluster_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/authn/authntest"
	"github.com/sekisho/sekisho/internal/apptest"
	"github.com/sekisho/sekisho/store/storetest"
)

// TestComposeExampleWithoutDocker runs the topology of
// examples/compose/compose.yaml with processes instead of containers (this
// machine has no container engine): the example's own sekisho.yaml and
// policy.csv for two `sekisho serve` replicas on one PostgreSQL schema,
// the sample app behind them, and the commands of the compose file's
// header (users add, users invite). Only what Docker provides is
// replaced: addresses and ports (each substitution must still match the
// example, so the test follows it), and the DNS alias zaimu.localhost by
// which the sample app fetches the JWKS (a Host-setting forwarder). A
// passkey registered on A signs in on B, and the sample app shows the
// user from the verified assertion.
func TestComposeExampleWithoutDocker(t *testing.T) {
	needsBinaries(t)
	dsn := storetest.PostgresDSN(t)
	bin := buildSekisho(t)
	app := filepath.Join(t.TempDir(), "sampleapp")
	if out, err := exec.Command("go", "build", "-o", app, "../examples/apps/cmd/sampleapp").CombinedOutput(); err != nil {
		t.Fatalf("go build sampleapp: %v\n%s", err, out)
	}
	src, err := os.ReadFile("../examples/compose/sekisho.yaml")
	if err != nil {
		t.Fatal(err)
	}
	policy, err := os.ReadFile("../examples/compose/policy.csv")
	if err != nil {
		t.Fatal(err)
	}
	ports := [2]int{freePort(t), freePort(t)} // compose publishes 8081 and 8082
	appPort := freePort(t)

	// The JWKS through the alias zaimu.localhost → replica A.
	aURL, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", ports[0]))
	alias := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(aURL)
		r.Out.Host = "zaimu.localhost"
	}})
	t.Cleanup(alias.Close)

	cfgs := make([]string, 2)
	for i := range 2 {
		dir := t.TempDir()
		text := string(src)
		text = substitute(t, "examples/compose/sekisho.yaml", text, [][2]string{
			{`dsn: "postgres://sekisho@postgres:5432/sekisho?sslmode=disable"`, fmt.Sprintf("dsn: %q", dsn)},
			{`http_listen: ":8080"`, fmt.Sprintf(`http_listen: "127.0.0.1:%d"`, ports[i])},
			{`metrics_listen: ":9090"`, fmt.Sprintf(`metrics_listen: "127.0.0.1:%d"`, freePort(t))},
			{`upstream: http://sampleapp:9001`, fmt.Sprintf(`upstream: http://127.0.0.1:%d`, appPort)},
			{`dir: /var/lib/sekisho/audit`, fmt.Sprintf(`dir: %s`, filepath.Join(dir, "audit"))},
			{`"http://zaimu.localhost:8081"`, fmt.Sprintf(`"http://zaimu.localhost:%d"`, ports[0])},
			{`"http://zaimu.localhost:8082"`, fmt.Sprintf(`"http://zaimu.localhost:%d"`, ports[1])},
		})
		cfgs[i] = filepath.Join(dir, "sekisho.yaml")
		if err := os.WriteFile(cfgs[i], []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "policy.csv"), policy, 0o600); err != nil {
			t.Fatal(err)
		}
		start(t, dir, bin, "serve", "--config", cfgs[i])
	}
	start(t, t.TempDir(), app, "-listen", fmt.Sprintf("127.0.0.1:%d", appPort), "-title", "財務会計システム",
		"-audience", "zaimu", "-jwks", alias.URL+"/.well-known/sekisho/jwks.json")

	// The compose file's header commands, against replica A.
	waitFor(t, "replica A to answer", 20*time.Second, func() bool {
		resp, err := http.Get(aURL.String() + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sekisho %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out)
	}
	run("users", "add", "--config", cfgs[0], "--id", "sato", "--name", "佐藤 花子", "--roles", "財務")
	link, err := url.Parse(strings.TrimSpace(run("users", "invite", "--config", cfgs[0], "--id", "sato")))
	if err != nil || link.Host != fmt.Sprintf("zaimu.localhost:%d", ports[0]) || link.Query().Get("token") == "" {
		t.Fatalf("users invite printed %v, want an enrollment URL on zaimu.localhost:%d", link, ports[0])
	}

	// Registration on A at http://zaimu.localhost:<A>, sign-in on B at
	// http://zaimu.localhost:<B>.
	auth := authntest.New()
	originA := fmt.Sprintf("http://zaimu.localhost:%d", ports[0])
	originB := fmt.Sprintf("http://zaimu.localhost:%d", ports[1])
	apptest.NewBrowser(t, originA, nil).Register(ports[0], link.Query().Get("token"), auth)
	onB := apptest.NewBrowser(t, originB, nil)
	if st, res := onB.SignIn(ports[1], ports[1], auth, authntest.Overrides{}); st != http.StatusOK {
		t.Fatalf("login on B with the passkey registered on A: %d %s", st, res)
	}
	st, page := onB.Get(ports[1], "/")
	if st != http.StatusOK || !strings.Contains(string(page), `<td id="user">sato</td>`) {
		t.Fatalf("the sample app behind B answered %d:\n%s\nwant a page for sato from the verified assertion", st, page)
	}
}

// start runs a command in dir until the test ends.
func start(t *testing.T, dir, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
}

// httptestServer serves h on a loopback port until the test ends and
// returns its URL.
func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
