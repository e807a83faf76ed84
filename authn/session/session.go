package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/store"
)

// Sentinel errors that callers branch on. Every error Verify returns wraps
// exactly one of them.
var (
	// ErrInvalid: the token is malformed, not signed by one of our keys
	// with ES256, or has the wrong issuer, audience or type.
	ErrInvalid = errors.New("session: invalid token")
	// ErrExpired: the session passed its absolute lifetime or was idle
	// longer than cfg.Session.Idle.
	ErrExpired = errors.New("session: expired")
	// ErrRevoked: a revocation matches the session.
	ErrRevoked = errors.New("session: revoked")
	// ErrDeviceMismatch: the session was issued to a device certificate
	// and this request did not present that certificate.
	ErrDeviceMismatch = errors.New("session: device certificate does not match the session")
)

const (
	// refreshAfter is how stale LastSeen may get before NeedsRefresh asks
	// for a new cookie (idle timeout sliding).
	refreshAfter = time.Minute
	// pollEvery is how often Run asks the store for new revocations.
	pollEvery = 250 * time.Millisecond
	// defaultCacheSize bounds the verified-token cache. A cookie is about
	// 600 bytes, so the cache stays near 10 MiB when full.
	defaultCacheSize = 16384
	// maxTokenLen refuses absurd cookies before any parsing.
	maxTokenLen = 4096
)

// Token types and the session audience. Cookies and assertions are signed
// with different keys and carry different typ and aud values, so one can
// never pass for the other.
const (
	sessionTyp      = "sekisho-session+jwt"
	sessionAudience = "sekisho-session"
	assertionTyp    = "JWT"
)

// Claims is one session as the cookie carries it. Roles and department are
// deliberately absent: they are read from the store on each request.
type Claims struct {
	// ID is the session id (jti): 128 random bits, base64url.
	ID   string
	User string
	// AMR lists the authentication methods: hwk, user, uv, mtls.
	AMR []string
	// AuthTime is the last authentication (updated by step-up).
	AuthTime time.Time
	// IssuedAt is when the session began; ExpiresAt = IssuedAt +
	// cfg.Session.Lifetime. Both keep their values across refreshes.
	IssuedAt  time.Time
	ExpiresAt time.Time
	// LastSeen is when the cookie was last (re)issued; the idle timeout
	// counts from it.
	LastSeen time.Time
	// Device is the device id of the certificate presented at login, if any.
	Device string
	// CertFP is the hex SHA-256 of that certificate; with
	// cfg.Session.Bound() the session is refused without it.
	CertFP string
	// IP is the client address at login. It is stored in the session
	// record only, never in the token.
	IP string
}

// Option changes how a Manager is built.
type Option func(*Manager)

// WithClock replaces time.Now (tests use a fake clock).
func WithClock(now func() time.Time) Option { return func(m *Manager) { m.now = now } }

// WithLogger sets the logger. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(m *Manager) { m.log = l } }

// WithRegisterer registers the Manager's metrics. Default: not registered.
func WithRegisterer(r prometheus.Registerer) Option { return func(m *Manager) { m.reg = r } }

// WithIssuer sets the iss of cookies and assertions (the gateway id that
// upstreams check). Default: "https://" + cfg.WebAuthn.RPID, or "sekisho"
// when no RP id is configured.
func WithIssuer(iss string) Option { return func(m *Manager) { m.issuer = iss } }

// Manager issues and verifies session cookies and upstream assertions and
// keeps the revocation list. It is safe for concurrent use.
type Manager struct {
	st     store.Store
	now    func() time.Time
	log    *slog.Logger
	reg    prometheus.Registerer
	issuer string

	lifetime, idle, rotation, assertionLifetime time.Duration
	bound                                       bool

	sessionKeys   atomic.Pointer[keyring]
	assertionKeys atomic.Pointer[keyring]
	keyMu         sync.Mutex // serialises key refresh and creation
	lastKeyLoad   atomic.Int64
	lastKeyPrune  time.Time // m.now() of the last key prune; guarded by keyMu

	revs      atomic.Pointer[revset]
	revMu     sync.Mutex // serialises revocation updates
	poll      pollState  // guarded by revMu
	pollEvery time.Duration

	cache   *lru.Cache[string, *Claims]
	asserts *lru.Cache[assertionKey, *assertionEntry]

	metrics metrics
}

// New builds a Manager over st: it loads (or on first start creates) the
// signing keys and loads the revocation list. Call Run to keep both fresh.
func New(cfg *config.Config, st store.Store, opts ...Option) (*Manager, error) {
	if cfg == nil || st == nil {
		return nil, errors.New("session: New needs a config and a store")
	}
	m := &Manager{
		st:  st,
		now: time.Now,
		log: slog.Default(),
		// config.Load fills these; a Config built in code may leave them zero.
		lifetime:          orDefault(cfg.Session.Lifetime, config.DefaultSessionLifetime),
		idle:              orDefault(cfg.Session.Idle, config.DefaultSessionIdle),
		rotation:          orDefault(cfg.Session.KeyRotation, config.DefaultKeyRotation),
		assertionLifetime: orDefault(cfg.Session.AssertionLifetime, config.DefaultAssertionLifetime),
		bound:             cfg.Session.Bound(),
		pollEvery:         pollEvery,
	}
	if cfg.WebAuthn.RPID != "" {
		m.issuer = "https://" + cfg.WebAuthn.RPID
	} else {
		m.issuer = "sekisho"
	}
	for _, o := range opts {
		o(m)
	}
	var err error
	if m.cache, err = lru.New[string, *Claims](defaultCacheSize); err != nil {
		return nil, fmt.Errorf("session: creating token cache: %w", err)
	}
	if m.asserts, err = lru.New[assertionKey, *assertionEntry](defaultCacheSize); err != nil {
		return nil, fmt.Errorf("session: creating assertion cache: %w", err)
	}
	m.metrics = newMetrics()
	if m.reg != nil {
		if err := m.metrics.register(m.reg); err != nil {
			return nil, fmt.Errorf("session: registering metrics: %w", err)
		}
	}
	m.revs.Store(&revset{sessions: map[string]time.Time{}, users: map[string]time.Time{}, devices: map[string]time.Time{}})

	ctx := context.Background()
	if err := m.refreshKeys(ctx); err != nil {
		return nil, err
	}
	if err := m.syncRevocations(ctx, false); err != nil {
		return nil, err
	}
	return m, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// newID returns 128 random bits, base64url without padding.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Run keeps the Manager fresh until ctx ends: it polls the store for
// revocations every 250 ms (at once on a store notification, if the store
// offers them), and reloads and rotates signing keys.
func (m *Manager) Run(ctx context.Context) {
	poll := time.NewTicker(m.pollEvery)
	defer poll.Stop()
	keys := time.NewTicker(m.keyRefreshEvery())
	defer keys.Stop()
	notify := m.subscribe(ctx)
	if notify != nil {
		// What changed between New's first load and the subscription (a
		// key another replica created as both started on an empty store)
		// was not notified: load it now, or this replica would publish a
		// JWKS without that replica's key until the next periodic reload.
		m.refreshOrLog(ctx)
		m.syncOrLog(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			m.syncOrLog(ctx)
		case ch, ok := <-notify:
			if !ok {
				notify = nil // store closed or ctx ended; keep polling
				continue
			}
			switch ch.Kind {
			case store.ChangeRevocation:
				m.syncOrLog(ctx)
			case store.ChangeKey:
				m.refreshOrLog(ctx)
			case store.ChangeResync:
				m.syncOrLog(ctx)
				m.refreshOrLog(ctx)
			}
		case <-keys.C:
			m.refreshOrLog(ctx)
		}
	}
}

func (m *Manager) refreshOrLog(ctx context.Context) {
	if err := m.refreshKeys(ctx); err != nil && ctx.Err() == nil {
		m.log.Error("session: refreshing signing keys", "err", err)
	}
}

func (m *Manager) syncOrLog(ctx context.Context) {
	if err := m.syncRevocations(ctx, true); err != nil && ctx.Err() == nil {
		m.metrics.syncErrors.Inc()
		m.log.Error("session: polling revocations", "err", err)
	}
}
