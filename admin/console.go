package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/authn"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/policy"
	"github.com/sekisho/sekisho/reqctx"
	"github.com/sekisho/sekisho/store"
)

// Prefix is where the gateway mounts the console.
const Prefix = "/.sekisho/admin"

// Deps are what the console works with. They are plain values and
// functions so that the application wires them from the packages that own
// them (store, audit trail, session manager, passkey service, policy
// engine) and tests wire the same real components.
type Deps struct {
	// Config supplies routes, zones, classes, the policy time zone and the
	// default page language. Required.
	Config *config.Config
	// Store holds users, passkeys, devices, sessions and revocations. Required.
	Store store.Store
	// AuditDir is the audit trail directory, read with audit.Query,
	// audit.BuildReport and audit.Verify. Required.
	AuditDir string
	// Query reads audit records for the search, the CSV export, the
	// timeline and the overview. In a cluster it reads the central table
	// (audit.QueryPostgres) so that every replica's records are seen. Nil:
	// the local trail in AuditDir (audit.Query).
	Query func(ctx context.Context, f audit.Filter) iter.Seq2[*audit.Record, error]
	// AuditKeys verify the trail's checkpoints (audit.Trail.PublicJWKS or
	// audit.LoadPublicKeys). Nil: the overview says verification is not
	// configured.
	AuditKeys jwk.Set
	// TrailHealthy reports whether the live trail can be written
	// (audit.Trail.Healthy). Nil: the overview does not show it.
	TrailHealthy func() error
	// Record appends an admin record to the live trail. The console fills
	// the record from the request context; the function may append durably
	// (audit.Trail.AppendDurable). Required.
	Record func(ctx context.Context, rec *audit.Record) error
	// Revoke stores a revocation and applies it at once (the session
	// manager's Revoke; other replicas follow). Required.
	Revoke func(ctx context.Context, r *store.Revocation) error
	// Invite makes a one-time enrollment token for a user (the passkey
	// service's Invite). Required.
	Invite func(ctx context.Context, userID string, ttl time.Duration) (string, error)
	// EnrollURL turns a token into the URL the user opens; host is the
	// host the administrator is using. Nil: authn.EnrollURL with Config.
	EnrollURL func(host, token string) (string, error)
	// Explain decides a request with the gateway's policy engine and says
	// how (policy.Engine.Explain). Required.
	Explain func(req *policy.Request) policy.Explanation
	// PolicyText returns the version and the text of the policy in force
	// (policy.Engine.Text). Required.
	PolicyText func() (version, text string)
	// PolicyFileDiffers reports that the policy file on disk is not the
	// text in force (a reload failed). Nil: the policy does not come from
	// a file here (a cluster follows the versions in PostgreSQL).
	PolicyFileDiffers func() bool
	// CSRFKey keys the anti-forgery tokens of the console's forms; at least
	// 32 random bytes, the same on every replica if requests may move
	// between them. Required.
	CSRFKey []byte
}

// Option changes how New builds the console.
type Option func(*Console)

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(c *Console) { c.now = now } }

// WithLogger sets the logger. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *Console) { c.log = l } }

// WithPageSize sets how many records an audit search page shows. Default 50.
func WithPageSize(n int) Option {
	return func(c *Console) {
		if n > 0 {
			c.pageSize = n
		}
	}
}

// WithReportEvery sets how long the overview's 24-hour summary is reused
// before the trail is read again. Default 1 minute; 0 reads it every time.
func WithReportEvery(d time.Duration) Option { return func(c *Console) { c.reportEvery = d } }

// WithVerifyEvery sets how long a verification of the whole trail is
// reused by the overview before it is run again. Default 5 minutes.
func WithVerifyEvery(d time.Duration) Option { return func(c *Console) { c.verifyEvery = d } }

// Console is the admin console: an http.Handler for everything under
// [Prefix]. It trusts the gateway for who is acting (reqctx.Info) and
// never authenticates by itself; it does protect its forms against
// cross-site requests.
type Console struct {
	d           Deps
	now         func() time.Time
	log         *slog.Logger
	loc         *time.Location
	pageSize    int
	verifyEvery time.Duration
	reportEvery time.Duration
	defLang     string

	mux   *http.ServeMux
	cop   *http.CrossOriginProtection
	pages map[string]*pageTemplate

	verifyMu   sync.Mutex
	lastVerify *verifyStatus

	reportMu   sync.Mutex
	lastReport *summary
}

var _ http.Handler = (*Console)(nil)

// New checks d and builds the console.
func New(d Deps, opts ...Option) (*Console, error) {
	var missing []string
	for name, absent := range map[string]bool{
		"Config": d.Config == nil, "Store": d.Store == nil, "AuditDir": d.AuditDir == "",
		"Record": d.Record == nil, "Revoke": d.Revoke == nil, "Invite": d.Invite == nil,
		"Explain": d.Explain == nil, "PolicyText": d.PolicyText == nil,
	} {
		if absent {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("admin console: missing dependencies: %s", strings.Join(sortedCopy(missing), ", "))
	}
	if len(d.CSRFKey) < 32 {
		return nil, errors.New("admin console: CSRFKey must be at least 32 bytes")
	}
	if d.EnrollURL == nil {
		cfg := d.Config
		d.EnrollURL = func(host, token string) (string, error) { return authn.EnrollURL(cfg, host, token) }
	}
	loc, err := policy.Location(d.Config)
	if err != nil {
		return nil, fmt.Errorf("admin console: %w", err)
	}
	c := &Console{
		d:           d,
		now:         time.Now,
		log:         slog.Default(),
		loc:         loc,
		pageSize:    50,
		verifyEvery: 5 * time.Minute,
		reportEvery: time.Minute,
		defLang:     "ja",
		cop:         http.NewCrossOriginProtection(),
	}
	if d.Config.Server.Language == "en" {
		c.defLang = "en"
	}
	for _, o := range opts {
		o(c)
	}
	if c.pages, err = parsePages(c); err != nil {
		return nil, fmt.Errorf("admin console: %w", err)
	}
	c.routes()
	return c, nil
}

// query reads audit records through Deps.Query, or the local trail.
func (c *Console) query(ctx context.Context, f audit.Filter) iter.Seq2[*audit.Record, error] {
	if c.d.Query != nil {
		return c.d.Query(ctx, f)
	}
	return audit.Query(c.d.AuditDir, f)
}

func (c *Console) routes() {
	m := http.NewServeMux()
	p := Prefix
	m.HandleFunc("GET "+p+"/{$}", c.overview)
	m.Handle("GET "+p+"/static/", http.StripPrefix(p, staticHandler()))
	m.HandleFunc("POST "+p+"/verify", c.verifyNow)
	m.HandleFunc("GET "+p+"/audit", c.search)
	m.HandleFunc("GET "+p+"/audit.csv", c.exportCSV)
	m.HandleFunc("GET "+p+"/timeline", c.timeline)
	m.HandleFunc("GET "+p+"/users", c.users)
	m.HandleFunc("POST "+p+"/users", c.addUser)
	m.HandleFunc("GET "+p+"/users/view", c.userView)
	m.HandleFunc("POST "+p+"/users/disable", c.disableUser)
	m.HandleFunc("POST "+p+"/users/enable", c.enableUser)
	m.HandleFunc("POST "+p+"/users/invite", c.inviteUser)
	m.HandleFunc("POST "+p+"/users/passkeys/delete", c.deletePasskey)
	m.HandleFunc("GET "+p+"/devices", c.devices)
	m.HandleFunc("POST "+p+"/devices/enable", c.enableDevice)
	m.HandleFunc("GET "+p+"/revoke", c.revokeForm)
	m.HandleFunc("POST "+p+"/revoke", c.revokePost)
	m.HandleFunc("GET "+p+"/policy", c.policyPage)
	m.HandleFunc(p+"/", c.notFound)
	c.mux = m
}

// maxForm bounds a form body; the console's forms are small.
const maxForm = 64 << 10

// ServeHTTP serves the console. Every response carries a strict content
// security policy; a request without a signed-in user is refused (the
// gateway should never let one through; this is defence in depth); a
// state-changing request must be same-origin and carry the form token
// bound to the admin's session.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")

	info := reqctx.From(r.Context())
	if info == nil || info.User == "" {
		c.fail(w, r, http.StatusForbidden, "err.forbidden", errors.New("no signed-in user in the request context"))
		return
	}
	if r.URL.Path == Prefix {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		if err := c.cop.Check(r); err != nil {
			c.fail(w, r, http.StatusForbidden, "err.crossorigin", err)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			c.fail(w, r, http.StatusBadRequest, "err.badform", err)
			return
		}
		if !c.validCSRF(info.SessionID, r.PostForm.Get("csrf")) {
			c.fail(w, r, http.StatusForbidden, "err.csrf", errors.New("form token missing or wrong"))
			return
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		c.fail(w, r, http.StatusMethodNotAllowed, "err.method", nil)
		return
	}
	c.mux.ServeHTTP(w, r)
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.fail(w, r, http.StatusNotFound, "err.notfound", nil)
}

// fail answers with an error page: the safe words of key for the admin,
// err for the log only.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, key string, err error) {
	if err != nil {
		info := reqctx.From(r.Context())
		var user, rid string
		if info != nil {
			user, rid = info.User, info.RequestID
		}
		lvl := slog.LevelInfo
		if status >= 500 {
			lvl = slog.LevelError
		}
		c.log.Log(r.Context(), lvl, "admin console refused a request", "status", status, "why", key, "user", user, "request_id", rid, "path", r.URL.Path, "err", err)
	}
	p := c.newPage(r, "", "")
	p.Title = p.T("err.title")
	p.Error = p.T(key)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	c.execute(w, "error", p)
}

// internal answers 500 for an error of a dependency.
func (c *Console) internal(w http.ResponseWriter, r *http.Request, err error) {
	c.fail(w, r, http.StatusInternalServerError, "err.internal", err)
}

// render writes a page with status 200.
func (c *Console) render(w http.ResponseWriter, r *http.Request, name string, p *page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	c.execute(w, name, p)
}

func (c *Console) execute(w io.Writer, name string, p *page) {
	t, ok := c.pages[name]
	if !ok {
		c.log.Error("admin console: no such page template", "page", name)
		return
	}
	if err := t.t.ExecuteTemplate(w, "layout", p); err != nil {
		c.log.Error("admin console: rendering page", "page", name, "err", err)
	}
}

// record appends an admin record naming the acting administrator.
func (c *Console) record(r *http.Request, action, target, detail string, failed error) error {
	info := reqctx.From(r.Context())
	rec := &audit.Record{Time: c.now().UTC(), Event: audit.EventAdmin, Action: action, Target: target, Detail: detail,
		Decision: audit.DecisionAllow, Enforced: true, Rule: "console", Route: "admin"}
	if info != nil {
		rec.RequestID, rec.User, rec.Roles, rec.Device, rec.CertFP = info.RequestID, info.User, info.Roles, info.Device, info.CertFP
		rec.AMR, rec.AuthTime, rec.Zone, rec.Class, rec.Segment = info.AMR, info.AuthTime, info.Zone, info.Class, info.Segment
		rec.Method, rec.Host, rec.Path = r.Method, info.Host, r.URL.Path
		if info.IP.IsValid() {
			rec.IP = info.IP.String()
		}
	}
	if failed != nil {
		rec.Decision = audit.DecisionError
		rec.Reasons = []string{"action_failed"}
	}
	if err := c.d.Record(r.Context(), rec); err != nil {
		c.log.Error("admin console: writing the admin audit record", "action", action, "target", target, "err", err)
		return fmt.Errorf("recording admin action %s: %w", action, err)
	}
	return nil
}

// actor is the signed-in administrator.
func actor(r *http.Request) string {
	if info := reqctx.From(r.Context()); info != nil {
		return info.User
	}
	return ""
}

func infoOf(r *http.Request) *reqctx.Info { return reqctx.From(r.Context()) }
