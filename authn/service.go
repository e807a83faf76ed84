package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/store"
)

// Event kinds handed to the [WithEvents] callback. The proxy turns each into
// an audit record of event "authn".
const (
	EventEnroll            = "enroll"
	EventLoginSuccess      = "login_success"
	EventLoginFailure      = "login_failure"
	EventCounterRegression = "counter_regression"
	EventLogout            = "logout"
	EventStepUp            = "stepup"
	EventPasskeyAdded      = "passkey_added"
	EventPasskeyRemoved    = "passkey_removed"
	EventInvite            = "invite"
)

// Event is one authentication event. The request it happened in is in the
// callback's context (reqctx.From), when there was one.
type Event struct {
	// Kind is one of the Event* constants.
	Kind string
	// User is the user id, when known.
	User string
	// CredentialID is the base64url credential id, when one was involved.
	CredentialID string
	// Reason says why a ceremony failed (one of the Reason* constants) or
	// why something was done ("logout", "user").
	Reason string
}

// Service runs the WebAuthn ceremonies, serves sekisho's own pages under
// /.sekisho/ and turns session cookies into identities. It is safe for
// concurrent use. Build it with [New].
type Service struct {
	cfg    *config.Config
	st     store.Store
	sm     *session.Manager
	now    func() time.Time
	log    *slog.Logger
	events func(context.Context, Event)

	origins   *originSet
	rps       *rpCache
	routes    map[string]bool // route hosts, lower case
	uv        string          // "required", "preferred" or "discouraged"
	timeout   time.Duration   // ceremony lifetime
	aaguids   [][]byte        // allowed AAGUIDs (16 bytes each); empty: any
	seal      *sealer
	used      *usedSet
	limits    *limiter
	users     *userCache
	cop       *http.CrossOriginProtection
	pages     *pages
	metrics   *metrics
	stepupAge time.Duration
}

// Option changes how [New] builds a [Service].
type Option func(*options)

type options struct {
	now    func() time.Time
	log    *slog.Logger
	reg    prometheus.Registerer
	events func(context.Context, Event)
	limits RateLimits
}

// WithClock sets the clock for ceremony expiry, rate limits, invitations
// and the user cache. Default time.Now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the service's metrics with reg. Default: none.
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithEvents sets the callback that receives authentication events. It is
// called synchronously on the request's goroutine and must not block for long.
func WithEvents(fn func(ctx context.Context, ev Event)) Option {
	return func(o *options) { o.events = fn }
}

// WithRateLimits replaces the default ceremony rate limits.
func WithRateLimits(l RateLimits) Option { return func(o *options) { o.limits = l } }

// New builds the service. cfg must have been validated (config.Load);
// st is the shared store and sm the session manager built on the same store.
// New reads or creates the ceremony sealing key in st, so that every replica
// can finish a ceremony another began.
func New(cfg *config.Config, st store.Store, sm *session.Manager, opts ...Option) (*Service, error) {
	if cfg == nil || st == nil || sm == nil {
		return nil, errors.New("authn: config, store and session manager are required")
	}
	o := options{now: time.Now, log: slog.Default(), limits: DefaultRateLimits}
	for _, opt := range opts {
		opt(&o)
	}
	wa := cfg.WebAuthn
	if wa.RPID == "" {
		return nil, errors.New("authn: webauthn.rp_id is required")
	}
	s := &Service{
		cfg:       cfg,
		st:        st,
		sm:        sm,
		now:       o.now,
		log:       o.log,
		events:    o.events,
		routes:    map[string]bool{},
		uv:        wa.UserVerification,
		timeout:   wa.CeremonyTimeout,
		used:      newUsedSet(),
		cop:       http.NewCrossOriginProtection(),
		stepupAge: 15 * time.Minute,
	}
	if s.uv == "" {
		s.uv = "required"
	}
	switch s.uv {
	case "required", "preferred", "discouraged":
	default:
		return nil, fmt.Errorf("authn: webauthn.user_verification %q: want required, preferred or discouraged", s.uv)
	}
	if s.timeout <= 0 {
		s.timeout = 5 * time.Minute
	}
	for _, r := range cfg.Routes {
		if r.Host != "" {
			s.routes[strings.ToLower(r.Host)] = true
		}
	}
	for _, a := range wa.AllowedAAGUIDs {
		b, err := parseAAGUID(a)
		if err != nil {
			return nil, fmt.Errorf("authn: webauthn.allowed_aaguids %q: %w", a, err)
		}
		s.aaguids = append(s.aaguids, b)
	}
	var err error
	if s.origins, err = newOriginSet(cfg); err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	s.rps = newRPCache(cfg, s.uv, s.timeout)
	if s.seal, err = loadSealer(context.Background(), st, s.now); err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	if s.limits, err = newLimiter(o.limits); err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	if s.users, err = newUserCache(st, s.now); err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	if s.pages, err = newPages(cfg.Server.Language, wa.RPName); err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	if s.metrics, err = newMetrics(o.reg); err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	return s, nil
}

// Handler serves everything under /.sekisho/ except /.sekisho/admin/, and
// /.well-known/sekisho/jwks.json. The proxy mounts it on every routed host
// after filling reqctx.Info.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathLogin, s.loginPage)
	mux.HandleFunc("POST "+PathLoginBegin, s.ceremony(s.loginBegin))
	mux.HandleFunc("POST "+PathLoginFinish, s.ceremony(s.loginFinish))
	mux.HandleFunc("GET "+PathEnroll, s.enrollPage)
	mux.HandleFunc("POST "+PathRegisterBegin, s.ceremony(s.registerBegin))
	mux.HandleFunc("POST "+PathRegisterFinish, s.ceremony(s.registerFinish))
	mux.HandleFunc("POST "+PathLogout, s.form(s.logout))
	mux.HandleFunc("GET "+PathMe, s.me)
	mux.HandleFunc("GET "+PathAccount, s.accountPage)
	mux.HandleFunc("POST "+PathPasskeyRename, s.form(s.renamePasskey))
	mux.HandleFunc("POST "+PathPasskeyRemove, s.form(s.removePasskey))
	mux.HandleFunc("GET "+PathJWKS, s.jwks)
	mux.Handle("GET "+PathStatic, http.StripPrefix(PathStatic, staticHandler()))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, &httpError{Code: http.StatusNotFound, Key: "err_not_found", Err: fmt.Errorf("no authn handler for %s %s", r.Method, r.URL.Path)})
	})
	return securityHeaders(mux)
}

// Paths served by [Service.Handler]. They are part of the outside contract
// (DESIGN.md §4) except the account form targets and static files.
const (
	PathLogin          = "/.sekisho/login"
	PathLoginBegin     = "/.sekisho/webauthn/login/begin"
	PathLoginFinish    = "/.sekisho/webauthn/login/finish"
	PathEnroll         = "/.sekisho/enroll"
	PathRegisterBegin  = "/.sekisho/webauthn/register/begin"
	PathRegisterFinish = "/.sekisho/webauthn/register/finish"
	PathLogout         = "/.sekisho/logout"
	PathMe             = "/.sekisho/me"
	PathAccount        = "/.sekisho/account"
	PathPasskeyRename  = "/.sekisho/account/passkeys/rename"
	PathPasskeyRemove  = "/.sekisho/account/passkeys/remove"
	PathStatic         = "/.sekisho/static/"
	PathJWKS           = "/.well-known/sekisho/jwks.json"
)

// emit hands ev to the events callback, if any.
func (s *Service) emit(ctx context.Context, ev Event) {
	if s.events != nil {
		s.events(ctx, ev)
	}
}
