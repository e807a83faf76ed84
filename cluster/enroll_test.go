package cluster_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/authn"
	"github.com/sekisho/sekisho/authn/authntest"
	"github.com/sekisho/sekisho/internal/apptest"
	"github.com/sekisho/sekisho/store/storetest"
)

// publicPort is the port users reach behind the load balancer; both
// processes are configured with it (server.public_port), as replicas are.
const publicPort = 8443

const publicHost = "zaimu.gw.example.lg.jp"

var publicOrigin = fmt.Sprintf("https://%s:%d", publicHost, publicPort)

// newBrowser is a browser on publicOrigin that trusts the harness's CA.
func newBrowser(t *testing.T, w *apptest.World) *apptest.Browser {
	return apptest.NewBrowser(t, publicOrigin, &tls.Config{RootCAs: w.CAPool, ServerName: publicHost})
}

// TestEnrollOnALoginOnB runs the WebAuthn ceremonies against two `sekisho
// serve` processes on one PostgreSQL schema, with a software
// authenticator that builds and signs real attestation and assertion
// bytes: the invitation is issued with the CLI against A's
// configuration, the passkey is registered on A, a new browser signs in
// on B, and a ceremony begun on one replica is finished on the other (a
// load balancer without sticky sessions).
func TestEnrollOnALoginOnB(t *testing.T) {
	needsBinaries(t)
	dsn := storetest.PostgresDSN(t)
	reps := apptest.StartCluster(t, apptest.ClusterOptions{DSN: dsn})
	for _, r := range reps {
		r.Stop()
	}
	bin := buildSekisho(t)
	ports := make([]int, len(reps))
	for i, r := range reps {
		ports[i], _ = startServe(t, bin, r)
	}
	a, b := ports[0], ports[1]
	cfgA := filepath.Join(reps[0].Dir, "sekisho.yaml")
	for i, p := range ports {
		waitFor(t, fmt.Sprintf("replica %d to serve HTTPS", i), 20*time.Second, func() bool {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}

	// The invitation is issued by IT with the CLI against A; the passkey is
	// registered on A.
	enroll := func(user string, auth *authntest.Authenticator) {
		t.Helper()
		inv := exec.Command(bin, "users", "invite", "--config", cfgA, "--id", user)
		inv.Dir = reps[0].Dir
		out, err := inv.Output()
		if err != nil {
			t.Fatalf("users invite: %v", err)
		}
		u, err := url.Parse(strings.TrimSpace(string(out)))
		if err != nil || u.Query().Get("token") == "" {
			t.Fatalf("users invite printed %q, want an enrollment URL with a token", out)
		}
		if got := u.Scheme + "://" + u.Host; got != publicOrigin {
			t.Errorf("enrollment URL origin %q, want the public origin %q", got, publicOrigin)
		}
		newBrowser(t, reps[0].World).Register(a, u.Query().Get("token"), auth)
	}
	auth := authntest.New()
	enroll("suzuki", auth)

	// A new browser (no cookies) signs in on B with the passkey made on A.
	login := func(br *apptest.Browser, begin, finish int) (int, []byte) {
		t.Helper()
		return br.SignIn(begin, finish, auth, authntest.Overrides{})
	}
	second := newBrowser(t, reps[0].World)
	if st, _ := second.Get(b, "/ledger"); st != http.StatusSeeOther {
		t.Fatalf("before sign-in B answered %d, want 303 to the sign-in page", st)
	}
	if st, res := login(second, b, b); st != http.StatusOK {
		t.Fatalf("login on B with the passkey registered on A: %d %s", st, res)
	}
	for i, p := range ports {
		st, page := second.Get(p, "/ledger")
		if st != http.StatusOK || !strings.Contains(string(page), "user=suzuki") {
			t.Fatalf("after signing in on B, replica %d answered %d %q, want the upstream page for suzuki", i, st, page)
		}
	}

	// A ceremony begun on A and finished on B, and the reverse.
	for _, hop := range [][2]int{{a, b}, {b, a}} {
		br := newBrowser(t, reps[0].World)
		if st, res := login(br, hop[0], hop[1]); st != http.StatusOK {
			t.Fatalf("login begun on port %d and finished on port %d: %d %s", hop[0], hop[1], st, res)
		}
		if st, _ := br.Get(hop[0], "/ledger"); st != http.StatusOK {
			t.Fatalf("session from a ceremony finished on port %d refused on port %d: %d", hop[1], hop[0], st)
		}
	}

	// A replay captured on the wire (the ceremony cookie and the
	// assertion) is refused by the other replica, also for a synced
	// passkey whose signature counter is always 0, which no counter check
	// can catch: the challenge is consumed in the shared store.
	synced := authntest.New()
	synced.BE, synced.BS = true, true
	zero := uint32(0)
	enroll("tanaka", synced)
	finishURL, _ := url.Parse(publicOrigin + "/.sekisho/webauthn/login/finish")
	for range 2 {
		br := newBrowser(t, reps[0].World)
		st, opts := br.Post(a, "/.sekisho/webauthn/login/begin", nil)
		if st != http.StatusOK {
			t.Fatalf("login begin: %d", st)
		}
		assertion, err := synced.Get(opts, publicOrigin, authntest.Overrides{Counter: &zero})
		if err != nil {
			t.Fatal(err)
		}
		attacker := newBrowser(t, reps[0].World)
		attacker.Jar.SetCookies(finishURL, br.Jar.Cookies(finishURL))
		if len(br.Jar.Cookies(finishURL)) == 0 {
			t.Fatal("login begin set no ceremony cookie")
		}
		if st, res := br.Post(a, "/.sekisho/webauthn/login/finish", assertion); st != http.StatusOK {
			t.Fatalf("login on A with a counter-0 passkey: %d %s", st, res)
		}
		st, res := attacker.Post(b, "/.sekisho/webauthn/login/finish", assertion)
		if st == http.StatusOK {
			t.Fatal("the same assertion and ceremony cookie were accepted again on B")
		}
		t.Logf("replay on B refused: %d %s", st, bytes.TrimSpace(res))
	}
}

func buildSekisho(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sekisho")
	build := exec.Command("go", "build", "-o", bin, "../cmd/sekisho")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startServe rewrites a harness replica's configuration to fixed ports
// (HTTPS with server.public_port, HTTP, metrics) and runs `sekisho serve`
// on it until the test ends. It returns the HTTPS and HTTP ports.
func startServe(t *testing.T, bin string, r *apptest.Replica) (httpsPort, httpPort int) {
	t.Helper()
	cfgPath := filepath.Join(r.Dir, "sekisho.yaml")
	text, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	httpsPort, httpPort = freePort(t), freePort(t)
	s := string(text)
	s = substitute(t, "the harness configuration", s, [][2]string{
		{`http_listen: "127.0.0.1:0"`, fmt.Sprintf(`http_listen: "127.0.0.1:%d"`, httpPort)},
		{`metrics_listen: "127.0.0.1:0"`, fmt.Sprintf(`metrics_listen: "127.0.0.1:%d"`, freePort(t))},
		{`  listen: "127.0.0.1:0"`, fmt.Sprintf("  listen: \"127.0.0.1:%d\"\n  public_port: %d", httpsPort, publicPort)},
	})
	if err := os.WriteFile(cfgPath, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Dir = r.Dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	return httpsPort, httpPort
}

// enrollInProcess registers a passkey for user on an in-process replica
// (its HTTPS listener, an invitation made in its store).
func enrollInProcess(t *testing.T, r *apptest.Replica, user string, auth *authntest.Authenticator) {
	t.Helper()
	token, err := authn.CreateInvitation(t.Context(), r.App.Store, user, "test", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	newBrowser(t, r.World).Register(apptest.Port(t, r.HTTPS), token, auth)
}
