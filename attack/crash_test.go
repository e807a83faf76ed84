package attack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/internal/apptest"
	"github.com/sekisho/sekisho/store"
)

// binary builds cmd/sekisho once per test run.
var bin = struct {
	once sync.Once
	dir  string
	path string
	err  error
}{}

func sekishoBinary(t *testing.T) string {
	t.Helper()
	bin.once.Do(func() {
		bin.dir, bin.err = os.MkdirTemp("", "sekisho-attack-bin")
		if bin.err != nil {
			return
		}
		bin.path = filepath.Join(bin.dir, "sekisho")
		out, err := exec.Command("go", "build", "-o", bin.path, "github.com/sekisho/sekisho/cmd/sekisho").CombinedOutput()
		if err != nil {
			bin.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.path
}

// freePort returns a loopback address nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// site is a configuration for the sekisho binary: one class-2 route whose
// class requires a synchronous (durable) audit record, in front of a
// recording upstream, and a session cookie for suzuki.
type site struct {
	dir, config, auditDir string
	https, http, metrics  string
	cookie                string
}

func newSite(t *testing.T, upstream, auditDir string) *site {
	t.Helper()
	dir := t.TempDir()
	s := &site{dir: dir, config: filepath.Join(dir, "sekisho.yaml"), auditDir: auditDir,
		https: freePort(t), http: freePort(t), metrics: freePort(t)}
	if s.auditDir == "" {
		s.auditDir = filepath.Join(dir, "data", "audit")
	}
	ca, err := certs.Init(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{zaimu, "127.0.0.1"}, 30)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("server.pem", certPEM)
	write("server-key.pem", keyPEM)
	if err := ca.WriteCRL(filepath.Join(dir, "crl.pem"), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	write("policy.csv", []byte("condition, 庁内, zone=chonai\nallow, *, class:2, read|write, 庁内\n"))
	write("sekisho.yaml", []byte(fmt.Sprintf(`
server:
  listen: %q
  http_listen: %q
  metrics_listen: %q
  tls: {cert: server.pem, key: server-key.pem}
  client_ca: [ca/ca.pem]
  crl: crl.pem
  shutdown_timeout: 5s
store: {driver: sqlite, dsn: data/sekisho.db}
webauthn: {rp_id: gw.example.lg.jp}
zones:
  chonai: [127.0.0.0/8]
classes:
  "2": {max_auth_age: 10h, require: [passkey], audit: sync}
routes:
  - name: zaimu
    host: %s
    upstream: %s
    segment: lgwan
    class: "2"
policy: {file: policy.csv}
audit: {dir: %q, checkpoint_every: 100}
`, s.https, s.http, s.metrics, zaimu, upstream, s.auditDir)))
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}

	// Users and a session, written to the store before the gateway starts,
	// as `sekisho users add` and a passkey login would leave them.
	cfg, err := config.Load(s.config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, cfg.Store.Driver, cfg.Store.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, u := range apptest.Users {
		c := *u
		if err := st.CreateUser(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	sm, err := session.New(cfg, st, session.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if s.cookie, err = sm.Issue(ctx, &session.Claims{User: "suzuki", AMR: apptest.UV, AuthTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return s
}

// proc is a running `sekisho serve`.
type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// newServeCmd prepares `sekisho serve` for s.
func newServeCmd(t *testing.T, s *site) *exec.Cmd {
	cmd := exec.Command(sekishoBinary(t), "serve", "--config", s.config)
	cmd.Dir = s.dir
	cmd.Stdout = io.Discard
	return cmd
}

func (s *site) start(t *testing.T) *proc {
	t.Helper()
	p := &proc{cmd: newServeCmd(t, s), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.kill(syscall.SIGKILL) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + s.metrics + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("sekisho serve exited: %v\n%s", err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sekisho serve not ready: %v\n%s", err, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill signals the process and waits for it; safe to call twice.
func (p *proc) kill(sig syscall.Signal) error {
	if p.cmd.ProcessState != nil {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		return <-p.done
	}
}

// get sends one request to the plain listener on a fresh connection.
func (s *site) get(path string) (status int, id string, err error) {
	conn, err := net.DialTimeout("tcp", s.http, 2*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw("GET", path, zaimu, s.cookie)); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Request-Id"), nil
}

// metric reads one unlabelled value from the metrics listener.
func (s *site) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+]+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("metric %s not exported", name)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// verify runs `sekisho audit verify --config` and returns its output.
func (s *site) verify(t *testing.T) (string, error) {
	t.Helper()
	cmd := exec.Command(sekishoBinary(t), "audit", "verify", "--config", s.config)
	cmd.Dir = s.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// recordingUpstream answers 200 to everything.
func recordingUpstream(t *testing.T) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestKill9UnderLoad: SIGKILL while requests of a synchronously audited
// class are in flight; after a restart every request that was answered
// 200 has its decision record, and `sekisho audit verify` passes.
func TestKill9UnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	s := newSite(t, recordingUpstream(t), "")
	p := s.start(t)

	var (
		mu    sync.Mutex
		acked []string
		other = map[int]int{}
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				st, id, err := s.get("/ledger")
				mu.Lock()
				if err == nil && st == 200 {
					acked = append(acked, id)
				} else if err == nil {
					other[st]++
				}
				mu.Unlock()
				if err != nil {
					// The server is gone; keep trying until stopped.
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := p.kill(syscall.SIGKILL); err == nil {
		t.Fatal("SIGKILL did not kill")
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n < 20 {
		t.Fatalf("only %d requests acknowledged before the kill (others %v)", n, other)
	}
	t.Logf("%d requests acknowledged with 200 before SIGKILL; other statuses %v", n, other)

	// A kill during a write leaves part of a line at the end of the
	// newest file. The group commit made this run's tail whole, so add
	// such a fragment by hand, as the crash could have left it.
	files, _ := filepath.Glob(filepath.Join(s.auditDir, "*.jsonl"))
	if len(files) == 0 {
		t.Fatal("no audit files")
	}
	sort.Strings(files)
	f, err := os.OpenFile(files[len(files)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":99999999,"time":"2026-`)
	f.Close()

	// Restart: the trail is reopened (the torn tail sealed), then served.
	p2 := s.start(t)
	if st, _, err := s.get("/after-restart"); err != nil || st != 200 {
		t.Fatalf("after restart: %d %v", st, err)
	}
	if err := p2.kill(syscall.SIGTERM); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, p2.stderr)
	}

	recs, _, err := audit.QueryAll(s.auditDir, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	decided := map[string]bool{}
	var opens []string
	for _, r := range recs {
		if r.Event == audit.EventAccess && r.Decision == audit.DecisionAllow {
			decided[r.RequestID] = true
		}
		if r.Event == audit.EventSystem {
			t.Logf("system record: %s %s", r.Action, r.Detail)
			if r.Action == audit.ActionOpen {
				opens = append(opens, r.Detail)
			}
		}
	}
	// The restart says the previous run ended uncleanly (and, if bytes
	// were torn, that they were sealed): the crash is on the record.
	if len(opens) < 2 || !strings.Contains(opens[1], "unclean, torn tail sealed") {
		t.Errorf("open records %q: the restart does not record the unclean end and the sealed tail", opens)
	}
	missing := 0
	for _, id := range acked {
		if !decided[id] {
			missing++
			if missing <= 5 {
				t.Errorf("request %s was acknowledged with 200 but has no decision record", id)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged requests lost after kill -9", missing, n)
	}
	if out, err := s.verify(t); err != nil {
		t.Errorf("sekisho audit verify after kill -9: %v\n%s", err, out)
	} else {
		t.Logf("audit verify: %s", strings.TrimSpace(out))
	}
}

// TestStartupFailureIsAnError: a gateway that cannot start (here: its
// audit directory is a file) exits non-zero with an error message, not a
// panic, and serves nothing.
func TestStartupFailureIsAnError(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	notDir := filepath.Join(dir, "audit-is-a-file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSite(t, "http://127.0.0.1:9", notDir)
	cmd := exec.Command(sekishoBinary(t), "serve", "--config", s.config)
	cmd.Dir = s.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("serve with an unusable audit directory: %v", err)
	}
	if strings.Contains(stderr.String(), "panic:") {
		t.Fatal("BUG (fixed; regression): internal/app.New panics (nil *App in its deferred Close: the named result is set to nil by `return nil, err` before the defer runs) when a step after opening the store fails, e.g. an unusable audit directory, instead of returning the error; stores and trails opened so far are not closed. First line: " + firstLine(stderr.String()))
	}
	if ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "audit") {
		t.Errorf("exit %d, stderr %q", ee.ExitCode(), stderr.String())
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// TestDiskFull: the audit directory lives on a 1 MiB tmpfs. Filled up,
// requests of a class with synchronous audit fail closed with 503 and the
// alarm metric rises; with space back, requests are served again and the
// trail still verifies. Mounting needs root (CAP_SYS_ADMIN); as root,
// chmod cannot make a directory unwritable, so a real full disk is the
// honest test.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	mnt := filepath.Join(t.TempDir(), "audit")
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mounting a tmpfs: %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here (%v: %s); the disk-full test needs root", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	s := newSite(t, recordingUpstream(t), mnt)
	p := s.start(t)
	if st, _, err := s.get("/before"); err != nil || st != 200 {
		t.Fatalf("before the disk is full: %d %v", st, err)
	}
	alarm0 := s.metric(t, "sekisho_audit_failures_total")

	// Fill the file system to the last byte.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	for {
		if _, err := f.Write(chunk[:1]); err != nil {
			break
		}
	}
	f.Close()

	// Enough requests to fill whatever the trail had buffered.
	var statuses []int
	failedClosed := false
	for i := 0; i < 50 && !failedClosed; i++ {
		st, id, err := s.get(fmt.Sprintf("/while-full/%d", i))
		if err != nil {
			t.Fatalf("request while full: %v\n%s", err, p.stderr)
		}
		statuses = append(statuses, st)
		if st == http.StatusServiceUnavailable {
			failedClosed = true
			if id == "" {
				t.Error("503 without a request id")
			}
		}
	}
	if !failedClosed {
		t.Fatalf("with the audit disk full, a sync-audit class was still served: statuses %v", statuses)
	}
	if got := s.metric(t, "sekisho_audit_failures_total"); got <= alarm0 {
		t.Errorf("sekisho_audit_failures_total %v, not above %v", got, alarm0)
	}
	// Readiness reports the trouble too, so a load balancer stops sending.
	if resp, err := http.Get("http://" + s.metrics + "/readyz"); err != nil {
		t.Errorf("/readyz while full: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/readyz while full: %d, want 503", resp.StatusCode)
		}
	}

	// Space returns: service resumes.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _, err := s.get("/after")
		if err == nil && st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered after space returned: %d %v\n%s", st, err, p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := p.kill(syscall.SIGTERM); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	out, err := s.verify(t)
	if err != nil {
		t.Errorf("audit verify after a full disk: %v\n%s", err, out)
	}
	// The outage itself is on the record once writing works again.
	recs, _, err := audit.QueryAll(s.auditDir, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if r.Event == audit.EventSystem && r.Action == audit.ActionWriteFailed {
			found = true
			t.Logf("write_failed record: %s", r.Detail)
		}
	}
	if !found {
		t.Error("no write_failed system record after the disk-full outage")
	}
}
