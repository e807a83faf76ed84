package authn

import (
	"github.com/sekisho/sekisho/authn/authntest"

	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/reqctx"
	"github.com/sekisho/sekisho/store"
)

const (
	testRPID   = "example.lg.jp"
	testHost   = "zaimu.example.lg.jp"
	testOrigin = "https://" + testHost
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// eventLog records the events the service emits.
type eventLog struct {
	mu sync.Mutex
	ev []Event
}

func (l *eventLog) add(_ context.Context, ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ev = append(l.ev, ev)
}

func (l *eventLog) kinds() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.ev {
		out = append(out, e.Kind)
	}
	return out
}

// last returns the last event of kind, or nil.
func (l *eventLog) last(kind string) *Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.ev) - 1; i >= 0; i-- {
		if l.ev[i].Kind == kind {
			e := l.ev[i]
			return &e
		}
	}
	return nil
}

// testEnv is a real service over a real SQLite store and session manager,
// behind a real TLS server that sets reqctx.Info as the proxy would.
type testEnv struct {
	t      testing.TB
	cfg    *config.Config
	st     store.Store
	sm     *session.Manager
	svc    *Service
	srv    *httptest.Server
	clock  *fakeClock
	events *eventLog

	mu     sync.Mutex
	device string // device id the "proxy" reports for requests
	certFP string
}

func testConfig() *config.Config {
	cfg := &config.Config{}
	cfg.Server.Listen = ":8443"
	cfg.WebAuthn.RPID = testRPID
	cfg.WebAuthn.RPName = "テスト市 アクセスゲートウェイ"
	cfg.Session.Lifetime = 10 * time.Hour
	cfg.Session.Idle = 30 * time.Minute
	cfg.Routes = []config.Route{
		{Name: "zaimu", Host: testHost, Class: "2"},
		{Name: "jinji", Host: "jinji.example.lg.jp", Class: "3B"},
	}
	return cfg
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t testing.TB, mods ...func(*config.Config)) *testEnv {
	t.Helper()
	cfg := testConfig()
	for _, m := range mods {
		m(cfg)
	}
	return newEnvWith(t, cfg, WithRateLimits(RateLimits{PerIP: 1000, IPBurst: 1000, PerUser: 1000, UserBurst: 1000}))
}

func newEnvWith(t testing.TB, cfg *config.Config, opts ...Option) *testEnv {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "sekisho.db"))
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	clock := &fakeClock{t: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)}
	sm, err := session.New(cfg, st, session.WithClock(clock.Now), session.WithLogger(quietLogger()))
	if err != nil {
		t.Fatalf("session.New: %v", err)
	}
	env := &testEnv{t: t, cfg: cfg, st: st, sm: sm, clock: clock, events: &eventLog{}}
	opts = append([]Option{WithClock(clock.Now), WithLogger(quietLogger()), WithEvents(env.events.add)}, opts...)
	svc, err := New(cfg, st, sm, opts...)
	if err != nil {
		t.Fatalf("authn.New: %v", err)
	}
	env.svc = svc
	env.srv = httptest.NewTLSServer(env.handler())
	t.Cleanup(env.srv.Close)
	return env
}

// handler mounts the service as the proxy does and serves a protected app
// at every other path.
func (e *testEnv) handler() http.Handler {
	mux := http.NewServeMux()
	h := e.svc.Handler()
	mux.Handle("/.sekisho/", h)
	mux.Handle("/.well-known/sekisho/", h)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		id, err := e.svc.Identify(r)
		if err != nil {
			e.svc.RequireLogin(w, r)
			return
		}
		if err := e.svc.Refresh(w, r, id); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello %s roles=%s amr=%s", id.User, strings.Join(id.Roles, ","), strings.Join(id.AMR, ","))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		device, fp := e.device, e.certFP
		e.mu.Unlock()
		ip, _ := netip.ParseAddrPort(r.RemoteAddr)
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		info := &reqctx.Info{
			RequestID: "req-test", Received: e.clock.Now(), IP: ip.Addr(), Zone: "chonai", TLS: r.TLS != nil,
			Host: host, Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
			Device: device, CertFP: fp,
		}
		mux.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), info)))
	})
}

// setDevice makes the "proxy" report a verified device certificate.
func (e *testEnv) setDevice(id, fp string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.device, e.certFP = id, fp
}

// client is a browser stand-in: a cookie jar, and every connection goes to
// the test server whatever host the URL names.
func (e *testEnv) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	addr := e.srv.Listener.Addr().String()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Jar:       jar,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func (e *testEnv) addUser(id, name string, roles ...string) *store.User {
	e.t.Helper()
	u := &store.User{ID: id, DisplayName: name, Department: "財務課", Roles: roles, CreatedAt: e.clock.Now()}
	if err := e.st.CreateUser(context.Background(), u); err != nil {
		e.t.Fatalf("CreateUser: %v", err)
	}
	return u
}

func (e *testEnv) invite(user string) string {
	e.t.Helper()
	tok, err := e.svc.Invite(context.Background(), user, time.Hour)
	if err != nil {
		e.t.Fatalf("Invite: %v", err)
	}
	return tok
}

type response struct {
	status int
	body   []byte
	header http.Header
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", r.status, err, r.body)
	}
	return m
}

// errCode is the "error" member of a JSON refusal.
func (r response) errCode() string {
	var m struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.body, &m)
	return m.Error
}

// post sends a same-origin JSON POST as the page's script would.
func (e *testEnv) post(c *http.Client, path string, body []byte) response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, testOrigin+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", testOrigin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return e.do(c, req)
}

func (e *testEnv) get(c *http.Client, url string, accept string) response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return e.do(c, req)
}

func (e *testEnv) do(c *http.Client, req *http.Request) response {
	e.t.Helper()
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, body: b, header: res.Header}
}

// enroll runs the registration ceremony with an invitation token.
func (e *testEnv) enroll(c *http.Client, a *authntest.Authenticator, token string, o authntest.Overrides) (response, *authntest.Credential) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"token": token})
	begin := e.post(c, PathRegisterBegin, body)
	if begin.status != http.StatusOK {
		return begin, nil
	}
	cred, sc, err := a.Create(begin.body, testOrigin, o)
	if err != nil {
		e.t.Fatalf("authenticator create: %v", err)
	}
	fin := e.post(c, PathRegisterFinish, cred)
	if fin.status == http.StatusOK {
		a.Keep(sc)
	}
	return fin, sc
}

// login runs the login ceremony; it returns the finish response and the
// assertion JSON that was sent.
func (e *testEnv) login(c *http.Client, a *authntest.Authenticator, beginBody string, o authntest.Overrides) (response, []byte) {
	e.t.Helper()
	begin := e.post(c, PathLoginBegin, []byte(beginBody))
	if begin.status != http.StatusOK {
		return begin, nil
	}
	assertion, err := a.Get(begin.body, testOrigin, o)
	if err != nil {
		e.t.Fatalf("authenticator get: %v", err)
	}
	return e.post(c, PathLoginFinish, assertion), assertion
}

// enrolled creates a user with one passkey and returns a fresh browser.
func (e *testEnv) enrolled(id string, roles ...string) (*http.Client, *authntest.Authenticator) {
	e.t.Helper()
	e.addUser(id, "山田 太郎", roles...)
	a := authntest.New()
	c := e.client()
	res, _ := e.enroll(c, a, e.invite(id), authntest.Overrides{})
	if res.status != http.StatusOK {
		e.t.Fatalf("enroll %s: %d %s", id, res.status, res.body)
	}
	return c, a
}
