// Package app assembles a running sekisho from a configuration: the store,
// sessions and passkeys, device certificates, policy, audit trail and the
// gateway with its listeners. `sekisho serve`, `sekisho demo` and the
// end-to-end tests build the product through it, so they run the same
// thing.
//
// # Lifecycle
//
// [New] opens and wires everything; [App.Listen] binds the listeners, so an
// address in use fails before anything is served; [App.Run] serves until
// its context ends and then shuts down gracefully; [App.Close] releases the
// store and seals the audit trail.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/admin"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/authn"
	"github.com/sekisho/sekisho/authn/mtls"
	"github.com/sekisho/sekisho/authn/session"
	"github.com/sekisho/sekisho/authn/ticketkeys"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/directory"
	"github.com/sekisho/sekisho/monitor"
	"github.com/sekisho/sekisho/policy"
	"github.com/sekisho/sekisho/proxy"
	"github.com/sekisho/sekisho/store"
)

// App is one running gateway.
type App struct {
	Config   *config.Config
	Store    store.Store
	Sessions *session.Manager
	Authn    *authn.Service
	Policy   *policy.Engine
	Trail    *audit.Trail
	Gateway  *proxy.Gateway
	Server   *proxy.Server
	Metrics  *proxy.Metrics
	// Cluster is this replica's part in a cluster; nil unless the store is
	// PostgreSQL (cluster.go).
	Cluster *Cluster
	Monitor *monitor.Monitor
	// Console is the admin console, mounted under /.sekisho/admin/.
	Console *admin.Console

	log     *slog.Logger
	now     func() time.Time
	devices *deviceRegistry
	verify  *mtls.Verifier
	addrs   []string
	// tickets shares TLS session ticket keys with the other replicas;
	// nil outside a cluster or without HTTPS.
	tickets *ticketkeys.Ring
}

// Option changes how New builds the app.
type Option func(*options)

type options struct {
	log *slog.Logger
	now func() time.Time
}

// WithLogger sets the logger for every part. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithClock replaces time.Now everywhere (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New builds the app for cfg. On error everything opened so far is closed.
func New(ctx context.Context, cfg *config.Config, opts ...Option) (a *App, err error) {
	o := options{log: slog.Default(), now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	a = &App{Config: cfg, log: o.log}
	// built, not the named result: "return nil, err" sets a to nil before
	// this runs, and what was opened so far must still be closed.
	built := a
	defer func() {
		if err != nil {
			built.Close()
			a = nil
		}
	}()
	if err := checkKeyFiles(cfg); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	a.Metrics = proxy.NewMetrics(reg)

	if a.Store, err = store.Open(ctx, cfg.Store.Driver, cfg.Store.DSN); err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	if a.Trail, err = audit.Open(cfg.Audit, audit.WithClock(o.now), audit.WithLogger(o.log), audit.WithRegisterer(reg)); err != nil {
		return nil, fmt.Errorf("opening audit trail %s: %w", cfg.Audit.Dir, err)
	}
	if a.Monitor, err = monitor.New(cfg.Monitor, monitor.WithClock(o.now), monitor.WithLogger(o.log), monitor.WithRegisterer(reg),
		monitor.WithAlertSink(a.Trail.Append), monitor.WithHealthCheck("audit", a.Trail.Healthy),
		monitor.WithResponder(a.respond)); err != nil {
		return nil, fmt.Errorf("starting monitoring: %w", err)
	}
	a.now = o.now
	a.devices = newDeviceRegistry(a.Store, o.now, cfg.Devices.ManualRegistration())
	if err = a.devices.load(ctx); err != nil {
		return nil, fmt.Errorf("loading device registry: %w", err)
	}
	if a.Sessions, err = session.New(cfg, a.Store, session.WithClock(o.now), session.WithLogger(o.log), session.WithRegisterer(reg)); err != nil {
		return nil, fmt.Errorf("starting sessions: %w", err)
	}
	if a.Authn, err = authn.New(cfg, a.authnStore(o.now), a.Sessions, authn.WithClock(o.now), authn.WithLogger(o.log),
		authn.WithRegisterer(reg), authn.WithEvents(a.authnEvent)); err != nil {
		return nil, fmt.Errorf("starting passkey service: %w", err)
	}
	if a.Policy, err = policy.New(cfg, policy.WithClock(o.now), policy.WithLogger(o.log), policy.WithRegisterer(reg)); err != nil {
		return nil, fmt.Errorf("loading policy: %w", err)
	}
	if a.Cluster, err = JoinCluster(ctx, a); err != nil {
		return nil, fmt.Errorf("joining the cluster: %w", err)
	}
	gwOpts := []proxy.Option{
		proxy.WithLogger(o.log), proxy.WithClock(o.now), proxy.WithMetrics(a.Metrics),
		proxy.WithAuthenticator(newAuthnAdapter(a.Authn, a.Sessions, o.now)),
		proxy.WithDecider(&policyAdapter{e: a.Policy, reg: a.devices}),
		proxy.WithRecorder(&auditAdapter{t: a.Trail, mon: a.Monitor}),
	}
	if a.Console, err = a.newConsole(ctx, o.now); err != nil {
		return nil, fmt.Errorf("starting the admin console: %w", err)
	}
	gwOpts = append(gwOpts, proxy.WithAdmin(a.Console))
	if len(cfg.Server.ClientCA) > 0 {
		if a.verify, err = mtls.New(cfg, mtls.WithClock(o.now), mtls.WithLogger(o.log)); err != nil {
			return nil, fmt.Errorf("loading device CAs: %w", err)
		}
		if err = a.verify.RegisterMetrics(reg); err != nil {
			return nil, err
		}
		gwOpts = append(gwOpts, proxy.WithDeviceVerifier(&deviceAdapter{v: a.verify, reg: a.devices}))
	}
	if a.Gateway, err = proxy.New(cfg, gwOpts...); err != nil {
		return nil, err
	}
	sopts := proxy.ServerOptions{Ready: a.ready}
	if cfg.Server.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Server.TLS.Cert, cfg.Server.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("loading server certificate %s: %w", cfg.Server.TLS.Cert, err)
		}
		sopts.TLSCert = &cert
		if a.verify != nil {
			sopts.ClientCAs = a.verify.ClientCAs()
		}
	}
	if a.Server, err = proxy.NewServer(a.Gateway, sopts); err != nil {
		return nil, err
	}
	if a.Cluster != nil && sopts.TLSCert != nil {
		// Replicas behind one load balancer resume each other's TLS
		// sessions. A single gateway keeps crypto/tls's own keys in memory
		// (none on disk).
		a.tickets = ticketkeys.New(a.Store, ticketkeys.WithClock(o.now), ticketkeys.WithLogger(o.log))
		if keys, err := a.tickets.Refresh(ctx); err != nil {
			a.log.Warn("TLS ticket keys not read; this replica uses its own until the database answers", "err", err)
		} else {
			a.Server.SetSessionTicketKeys(keys)
		}
	}
	return a, nil
}

// newConsole builds the admin console on this app's parts. The gateway
// mounts it under /.sekisho/admin/ behind the admin decision (route
// "admin", action "admin", class 3A).
func (a *App) newConsole(ctx context.Context, now func() time.Time) (*admin.Console, error) {
	key, err := admin.CSRFKeyFromStore(ctx, a.Store)
	if err != nil {
		return nil, err
	}
	return admin.New(admin.Deps{
		Config:       a.Config,
		Store:        a.Store,
		AuditDir:     a.Trail.Dir(),
		AuditKeys:    a.Trail.PublicJWKS(),
		TrailHealthy: a.Trail.Healthy,
		// In a cluster, the central table: every replica's records.
		Query: a.Cluster.AuditQuery(),
		Record: func(ctx context.Context, rec *audit.Record) error {
			err := a.Trail.AppendDurable(ctx, rec)
			observe(a.Monitor, rec, err)
			return err
		},
		// The console writes its own admin record (with the request id and
		// the reason), so the revocation is applied without a second one.
		Revoke:  a.applyRevocation,
		Invite:  a.Authn.Invite,
		Explain: a.Policy.Explain,
		PolicyText: func() (string, string) {
			version, text := a.Policy.Text()
			return version, string(text)
		},
		PolicyFileDiffers: a.policyFileDiffers,
		CSRFKey:           key,
	}, admin.WithLogger(a.log), admin.WithClock(now))
}

// policyFileDiffers reports that the policy file is not the text in
// force (a reload failed). A replica in a cluster follows the versions in
// PostgreSQL, so its file is not compared.
func (a *App) policyFileDiffers() bool {
	return a.Cluster == nil && a.Policy.FileDiffers()
}

// checkKeyFiles refuses private keys that others than the owner can read:
// the gateway's TLS key and the audit signing key.
func checkKeyFiles(cfg *config.Config) error {
	for _, p := range []string{cfg.Server.TLS.Key, cfg.Audit.Key} {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue // the audit key is created 0600 on first start
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("鍵ファイル %s は所有者以外も読めます。chmod 600 にしてください (private key %s is readable by group or others, mode %v)", p, p, fi.Mode().Perm())
		}
	}
	return nil
}

// ready is /readyz: the store answers and the audit trail can be written.
func (a *App) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// A replica of a cluster stays ready while the database is away: it
	// serves existing sessions from memory (fail-static, docs/scale-out.md).
	if _, err := a.Store.ListKeys(ctx, "session"); err != nil && a.Cluster == nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := a.Trail.Healthy(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Listen binds every listener and returns their addresses (HTTPS, HTTP,
// metrics, in that order, those configured).
func (a *App) Listen() ([]string, error) {
	addrs, err := a.Server.Listen()
	a.addrs = addrs
	return addrs, err
}

// Run serves until ctx ends. Background work (session key rotation and
// revocation sync, policy file watching) runs alongside.
func (a *App) Run(ctx context.Context) error {
	if a.addrs == nil {
		if _, err := a.Listen(); err != nil {
			return err
		}
	}
	bg, cancel := context.WithCancel(ctx)
	defer cancel()
	go a.Sessions.Run(bg)
	if a.Cluster != nil {
		go a.Cluster.Run(bg) // published policy versions instead of the file
	} else {
		go func() {
			if err := a.Policy.Watch(bg); err != nil && !errors.Is(err, context.Canceled) {
				a.log.Warn("policy file watch stopped", "err", err)
			}
		}()
	}
	go func() {
		if err := a.Monitor.Run(bg); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Error("monitor stopped", "err", err)
		}
	}()
	if a.tickets != nil {
		go a.tickets.Run(bg, ticketRefresh, a.Server.SetSessionTicketKeys)
	}
	go a.syncDevices(bg)
	go a.pruneStore(bg)
	go a.watchRevocations(bg)
	go a.drainSpool(bg)
	go func() {
		// Scheduled personnel transfers (人事異動) take effect on their date.
		err := directory.RunScheduler(bg, a.Config, a.Store, directory.WithAudit(a.Trail), directory.WithLogger(a.log))
		if err != nil && !errors.Is(err, context.Canceled) {
			a.log.Error("directory scheduler stopped", "err", err)
		}
	}()
	return a.Server.Serve(ctx)
}

// ticketRefresh is how often a replica reads the TLS ticket keys: well
// within ticketkeys.Prepublish, so that every replica knows a new key
// before any encrypts with it.
const ticketRefresh = time.Minute

// pruneAfter is how long expired session records, invitations and used
// WebAuthn challenges stay in the store before pruneStore deletes them.
const pruneAfter = 24 * time.Hour

// pruneStore deletes, at start and then hourly, what expired more than
// pruneAfter ago (store.Pruner), so those tables do not grow without end.
// Every replica may do it: the deletes are idempotent. Revocations and keys
// are never pruned.
func (a *App) pruneStore(ctx context.Context) {
	p, ok := a.Store.(store.Pruner)
	if !ok {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		a.pruneOnce(ctx, p)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *App) pruneOnce(ctx context.Context, p store.Pruner) {
	n, err := p.Prune(ctx, a.now().Add(-pruneAfter))
	switch {
	case err != nil && ctx.Err() == nil:
		a.log.Warn("pruning expired store records", "err", err)
	case n > 0:
		a.log.Info("pruned expired store records", "count", n)
	}
}

// syncDevices reloads the device registry periodically, so a device
// revoked on another replica is refused here too.
func (a *App) syncDevices(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.devices.load(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("reloading device registry", "err", err)
			}
		}
	}
}

// Revoke applies a revocation here at once (sessions and the device
// registry), stores it, so other replicas follow within a second, and
// writes its admin audit record.
func (a *App) Revoke(ctx context.Context, r *store.Revocation) error {
	if err := a.applyRevocation(ctx, r); err != nil {
		return err
	}
	a.recordRevocation(r)
	return nil
}

// applyRevocation is Revoke without the audit record, for callers that
// write their own (the console).
func (a *App) applyRevocation(ctx context.Context, r *store.Revocation) error {
	if err := a.Sessions.Revoke(ctx, r); err != nil {
		return err
	}
	if r.Kind == store.RevokeDevice {
		a.devices.markRevoked(r.Subject)
		d, err := a.Store.GetDevice(ctx, r.Subject)
		if errors.Is(err, store.ErrNotFound) {
			d = &store.Device{ID: r.Subject, FirstSeen: r.At, LastSeen: r.At}
		} else if err != nil {
			return err
		}
		d.Status, d.Reason = store.DeviceRevoked, r.Reason
		if err := a.Store.UpsertDevice(ctx, d); err != nil {
			return fmt.Errorf("revoking device %s: %w", r.Subject, err)
		}
	}
	return nil
}

// drainSpool appends, every second, the audit records that command-line
// tools spooled while this gateway held the trail (see audit.OpenWriter).
func (a *App) drainSpool(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if n, err := a.Trail.DrainSpool(); err != nil {
			a.log.Error("draining the audit spool", "err", err, "drained", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ReloadPolicy re-reads the policy file (SIGHUP); a bad file keeps the old
// policy.
func (a *App) ReloadPolicy() error {
	if a.Cluster != nil {
		_, err := a.Cluster.SyncPolicy(context.Background())
		return err
	}
	return a.Policy.Reload()
}

// Close releases everything New opened, sealing the audit trail.
func (a *App) Close() {
	if a.verify != nil {
		a.verify.Close()
	}
	if a.Trail != nil {
		if err := a.Trail.Close(); err != nil {
			a.log.Error("closing audit trail", "err", err)
		}
	}
	a.Cluster.Close() // after the trail: ships its final checkpoint
	if a.Store != nil {
		_ = a.Store.Close()
	}
}

// authnEvent turns an authentication event into an audit record.
func (a *App) authnEvent(ctx context.Context, ev authn.Event) {
	info := reqctxFrom(ctx)
	rec := recordFromInfo(info)
	rec.Event = audit.EventAuthn
	rec.Action = ev.Kind
	if ev.User != "" {
		rec.User = ev.User
	}
	rec.Target = ev.CredentialID
	rec.Decision = audit.DecisionAllow
	if ev.Reason != "" {
		rec.Reasons = []string{ev.Reason}
	}
	switch ev.Kind {
	case authn.EventLoginFailure, authn.EventCounterRegression:
		rec.Decision = audit.DecisionDeny
	}
	rec.Enforced = true
	err := a.Trail.Append(rec)
	observe(a.Monitor, rec, err)
	if err != nil {
		a.log.Error("audit authn event", "kind", ev.Kind, "err", err)
	}
}

// respond carries out an automatic response a monitoring rule asked for
// (off by default; see docs/monitoring.md). The monitor audits it.
func (a *App) respond(ctx context.Context, action, subject string) error {
	r := &store.Revocation{At: time.Now().UTC(), By: "monitor", Reason: "automatic response: " + action}
	switch action {
	case "stepup", "revoke_session", "revoke_user":
		r.Kind, r.Subject = store.RevokeUser, subject
	case "revoke_device":
		r.Kind, r.Subject = store.RevokeDevice, subject
	default:
		return fmt.Errorf("unknown automatic response %q", action)
	}
	return a.Revoke(ctx, r)
}
