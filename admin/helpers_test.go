package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/authn"
	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/policy"
	"github.com/sekisho/sekisho/reqctx"
	"github.com/sekisho/sekisho/store"
)

// testPolicy is a small policy in the file format of package policy.
const testPolicy = `# test policy
condition, 庁内, zone=chonai
condition, 新しいUV, amr=hwk+uv max_auth_age=15m
allow, *, class:2, read|write, 庁内
stepup, role:財務, route:zaimu, export, 庁内 & 新しいUV
allow, role:admin, class:3A, admin, 庁内 & 新しいUV
`

// fakeClock is a settable clock shared by the console, trail and engine.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// env is a console over real components: SQLite store, audit trail,
// session manager, policy engine.
type env struct {
	t       testing.TB
	dir     string
	cfg     *config.Config
	store   store.Store
	trail   *audit.Trail
	engine  *policy.Engine
	session *session.Manager
	clock   *fakeClock
	console *Console
	srv     *httptest.Server
	client  *http.Client

	mu   sync.Mutex
	info reqctx.Info // what the fake gateway puts in each request
	reqN atomic.Int64
}

// t0 is a Monday 10:00 JST.
var t0 = time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)

func testConfig(dir string) *config.Config {
	pfx := func(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }
	return &config.Config{
		Server:   config.Server{Listen: ":8443"},
		Store:    config.Store{Driver: "sqlite", DSN: filepath.Join(dir, "s.db")},
		WebAuthn: config.WebAuthn{RPID: "gw.example.lg.jp"},
		Session:  config.Session{Lifetime: 10 * time.Hour, Idle: 30 * time.Minute},
		Zones: config.Zones{
			{Name: "chonai", Prefixes: pfx("10.1.0.0/16")},
			{Name: "telework", Prefixes: pfx("10.200.0.0/16")},
		},
		Classes: map[string]config.Class{
			"3A": {Label: "機密性3A", MaxAuthAge: 15 * time.Minute, Require: []string{"passkey_uv"}, Audit: "sync"},
			"3B": {Label: "機密性3B", MaxAuthAge: time.Hour, Require: []string{"passkey_uv"}, Audit: "sync"},
			"2":  {Label: "機密性2", MaxAuthAge: 10 * time.Hour, Require: []string{"passkey"}},
			"1":  {Label: "機密性1"},
		},
		Routes: []config.Route{
			{Name: "zaimu", Host: "zaimu.gw.example.lg.jp", Segment: "lgwan", Class: "2", Paths: []config.PathRule{{Prefix: "/export", Class: "3B", Action: "export"}}},
			{Name: "pilot", Host: "pilot.gw.example.lg.jp", Segment: "lgwan", Class: "2", Mode: "shadow"},
		},
		Policy: config.Policy{Model: "builtin", File: filepath.Join(dir, "policy.csv")},
		Audit:  config.Audit{Dir: filepath.Join(dir, "audit")},
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t testing.TB, opts ...Option) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), clock: &fakeClock{}}
	e.clock.Set(t0)
	e.cfg = testConfig(e.dir)
	if err := os.WriteFile(e.cfg.Policy.File, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var err error
	if e.store, err = store.Open(ctx, "sqlite", e.cfg.Store.DSN); err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { e.store.Close() })
	if e.trail, err = audit.Open(e.cfg.Audit, audit.WithClock(e.clock.Now)); err != nil {
		t.Fatalf("audit.Open: %v", err)
	}
	t.Cleanup(func() { e.trail.Close() })
	if e.engine, err = policy.New(e.cfg, policy.WithClock(e.clock.Now), policy.WithLogger(quiet())); err != nil {
		t.Fatalf("policy.New: %v", err)
	}
	if e.session, err = session.New(e.cfg, e.store, session.WithClock(e.clock.Now), session.WithLogger(quiet())); err != nil {
		t.Fatalf("session.New: %v", err)
	}
	key := make([]byte, 32)
	copy(key, "a test key that is 32 bytes long")
	st := e.store
	d := Deps{
		Config:       e.cfg,
		Store:        e.store,
		AuditDir:     e.cfg.Audit.Dir,
		AuditKeys:    e.trail.PublicJWKS(),
		Record:       e.trail.AppendDurable,
		TrailHealthy: e.trail.Healthy,
		Revoke:       e.session.Revoke,
		Invite: func(ctx context.Context, userID string, ttl time.Duration) (string, error) {
			return authn.CreateInvitation(ctx, st, userID, actorOf(ctx), ttl, e.clock.Now())
		},
		Explain: e.engine.Explain,
		PolicyText: func() (string, string) {
			version, text := e.engine.Text()
			return version, string(text)
		},
		PolicyFileDiffers: e.engine.FileDiffers,
		CSRFKey:           key,
	}
	all := append([]Option{WithClock(e.clock.Now), WithLogger(quiet())}, opts...)
	if e.console, err = New(d, all...); err != nil {
		t.Fatalf("New: %v", err)
	}
	e.info = reqctx.Info{User: "admin1", Roles: []string{"admin"}, SessionID: "sess-admin1", Zone: "chonai",
		IP: netip.MustParseAddr("10.1.2.3"), Host: "127.0.0.1", AMR: []string{"hwk", "uv"}, Class: "3A", Route: "admin",
		Device: "PC-ADMIN-01"}
	e.srv = httptest.NewServer(http.HandlerFunc(e.gateway))
	t.Cleanup(e.srv.Close)
	e.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	e.mustUser("admin1", "管理 太郎", "情報政策課", "admin")
	return e
}

func actorOf(ctx context.Context) string {
	if info := reqctx.From(ctx); info != nil {
		return info.User
	}
	return "test"
}

// gateway stands in for proxy.Gateway.serveAdmin: it puts the request
// context in place (a copy per request, with a fresh request id) and
// calls the console.
func (e *env) gateway(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	info := e.info
	e.mu.Unlock()
	if info.User == "-" { // no context at all
		e.console.ServeHTTP(w, r)
		return
	}
	info.RequestID = "req-" + strconv.FormatInt(e.reqN.Add(1), 10)
	info.Method, info.Path = r.Method, r.URL.Path
	e.console.ServeHTTP(w, r.WithContext(reqctx.With(r.Context(), &info)))
}

func (e *env) setInfo(f func(*reqctx.Info)) {
	e.mu.Lock()
	f(&e.info)
	e.mu.Unlock()
}

func (e *env) lastRequestID() string { return "req-" + strconv.FormatInt(e.reqN.Load(), 10) }

type resp struct {
	Status int
	Header http.Header
	Body   string
}

func (e *env) do(method, path string, body url.Values, hdr map[string]string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{Status: res.StatusCode, Header: res.Header, Body: string(b)}
}

func (e *env) get(path string) resp { return e.do("GET", path, nil, nil) }

// post sends a form as a same-origin browser would, with the session's
// form token.
func (e *env) post(path string, form url.Values) resp {
	e.t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("csrf", e.console.csrfToken(e.info.SessionID))
	return e.do("POST", path, f, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": e.srv.URL})
}

func (e *env) mustUser(id, name, dept string, roles ...string) *store.User {
	e.t.Helper()
	u := &store.User{ID: id, DisplayName: name, Department: dept, Roles: roles, CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}
	if err := e.store.CreateUser(context.Background(), u); err != nil {
		e.t.Fatalf("CreateUser %s: %v", id, err)
	}
	return u
}

func (e *env) mustPasskey(user, name string, id byte) *store.Credential {
	e.t.Helper()
	c := &store.Credential{ID: []byte{id, 1, 2, 3}, UserID: user, Name: name, PublicKey: []byte{1}, CreatedAt: e.clock.Now(), UserVerified: true}
	if err := e.store.AddCredential(context.Background(), c); err != nil {
		e.t.Fatalf("AddCredential: %v", err)
	}
	return c
}

func (e *env) mustDevice(id, owner, status string) {
	e.t.Helper()
	d := &store.Device{ID: id, Owner: owner, Status: status, Fingerprints: []string{"ab"}, FirstSeen: e.clock.Now(), LastSeen: e.clock.Now()}
	if err := e.store.UpsertDevice(context.Background(), d); err != nil {
		e.t.Fatalf("UpsertDevice: %v", err)
	}
}

// seed appends records durably.
func (e *env) seed(recs ...*audit.Record) {
	e.t.Helper()
	for _, r := range recs {
		if err := e.trail.AppendDurable(context.Background(), r); err != nil {
			e.t.Fatalf("seeding audit: %v", err)
		}
	}
}

// access is an access record at t0+min minutes.
func access(min int, user, device, route, class, decision string, enforced bool, reasons ...string) *audit.Record {
	return &audit.Record{Time: t0.Add(time.Duration(min) * time.Minute), Event: audit.EventAccess,
		RequestID: "r-" + user + "-" + strconv.Itoa(min), User: user, Device: device, IP: "10.1.5.6", Zone: "chonai",
		Route: route, Class: class, Method: "GET", Host: route + ".gw.example.lg.jp", Path: "/", Decision: decision,
		Enforced: enforced, Reasons: reasons, Status: 200}
}

// adminRecords returns the admin records of the trail.
func (e *env) adminRecords() []*audit.Record {
	e.t.Helper()
	recs, _, err := audit.QueryAll(e.cfg.Audit.Dir, audit.Filter{Event: audit.EventAdmin})
	if err != nil {
		e.t.Fatal(err)
	}
	return recs
}

// wantAdminRecord asserts that an admin record of action on target names
// the acting admin and the request that did it, and returns it.
func (e *env) wantAdminRecord(action, target string) *audit.Record {
	e.t.Helper()
	for _, r := range e.adminRecords() {
		if r.Action == action && r.Target == target {
			if r.User != "admin1" || !strings.HasPrefix(r.RequestID, "req-") || r.Route != "admin" || r.IP != "10.1.2.3" {
				e.t.Errorf("admin record %s %s: user=%q request_id=%q route=%q ip=%q; want the acting admin and the request", action, target, r.User, r.RequestID, r.Route, r.IP)
			}
			return r
		}
	}
	e.t.Fatalf("no admin audit record with action %q target %q; have %v", action, target, summarise(e.adminRecords()))
	return nil
}

func summarise(recs []*audit.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Action+" "+r.Target)
	}
	return out
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

var confirmRe = regexp.MustCompile(`name="confirm" value="([^"]+)"`)

func hexID(b []byte) string { return hex.EncodeToString(b) }

func contains(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("page does not contain %q", w)
		}
	}
}

func lacks(t *testing.T, body string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(body, w) {
			t.Errorf("page contains %q", w)
		}
	}
}
