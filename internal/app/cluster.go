package app

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/policy"
	"github.com/sekisho/sekisho/store"
)

// Scale-out: several gateways ("replicas") share one PostgreSQL database
// (docs/scale-out.md). What a replica shares through it besides the store
// lives here:
//
//   - the audit trail: each replica keeps its own chained trail on local
//     disk and a [audit.PGShipper] copies it to audit_records;
//   - the policy: published versions in policy_versions; a replica installs
//     the newest one when told (store.ChangePolicy), after a lost
//     connection (store.ChangeResync) and on a periodic check;
//   - fail-static user reads ([withStaleUsers]): while the database is
//     unreachable, sessions already issued keep working.

// Clustered reports whether cfg makes this gateway one replica of several:
// the store is PostgreSQL.
func Clustered(cfg *config.Config) bool {
	return cfg.Store.Driver == "postgres" || cfg.Store.Driver == "postgresql"
}

// policyCheckEvery is the periodic check for a policy version that a
// replica missed (notifications are lost while its listener reconnects).
const policyCheckEvery = time.Second

// Cluster is a replica's part in a cluster. The zero of everything here
// is "not clustered": [JoinCluster] returns nil for a SQLite store.
type Cluster struct {
	a        *App
	log      *slog.Logger
	pool     *pgxpool.Pool // the store's database: policy
	apool    *pgxpool.Pool // audit_records (the same pool unless a postgres sink names another DSN)
	replica  string
	shipper  *audit.PGShipper
	policy   *policy.PGPolicy
	notifier store.Notifier

	applied atomic.Int64 // the policy version in force; 0: the local file
	syncMu  sync.Mutex
	closed  sync.Once
}

// JoinCluster prepares a's replica work: it opens a small pool on the
// database, creates the audit and policy tables, names the replica (see
// [audit.ReplicaID]), and installs the newest published policy, first
// publishing the local policy file as version 1 when none exists. It
// returns nil, nil when a's store is not PostgreSQL. Call it after the
// trail and the policy engine exist; run it with [Cluster.Run].
func JoinCluster(ctx context.Context, a *App) (*Cluster, error) {
	cfg := a.Config
	if !Clustered(cfg) {
		for _, s := range cfg.Audit.Sinks {
			if s.Type == "postgres" {
				return nil, errors.New("audit sink postgres needs store.driver postgres (監査の postgres 転送は PostgreSQL 構成でのみ使えます)")
			}
		}
		return nil, nil
	}
	c := &Cluster{a: a, log: a.log, policy: nil}
	if c.log == nil {
		c.log = slog.Default()
	}
	var err error
	if c.pool, err = openPool(ctx, cfg.Store.DSN, "sekisho-cluster"); err != nil {
		return nil, err
	}
	c.apool = c.pool
	for _, s := range cfg.Audit.Sinks {
		if s.Type == "postgres" && s.DSN != "" && s.DSN != cfg.Store.DSN {
			if c.apool, err = openPool(ctx, s.DSN, "sekisho-audit"); err != nil {
				c.pool.Close()
				return nil, err
			}
		}
	}
	fail := func(err error) (*Cluster, error) {
		c.closePools()
		return nil, err
	}
	if err := audit.MigratePostgres(ctx, c.apool); err != nil {
		return fail(err)
	}
	c.policy = policy.NewPGPolicy(c.pool)
	if err := c.policy.Migrate(ctx); err != nil {
		return fail(err)
	}
	if c.replica, err = audit.ReplicaID(a.Trail.Dir()); err != nil {
		return fail(err)
	}
	if c.shipper, err = audit.NewPGShipper(c.apool, a.Trail.Dir(), c.replica, audit.ShipperLogger(c.log)); err != nil {
		return fail(err)
	}
	if n, ok := a.Store.(store.Notifier); ok {
		c.notifier = n
	}
	v, err := c.policy.Latest(ctx)
	if err != nil {
		return fail(err)
	}
	if v == nil {
		name, text, err := policy.PolicyText(cfg)
		if err != nil {
			return fail(err)
		}
		if _, err := c.policy.Seed(ctx, cfg, name, text, "seed:"+c.replica); err != nil && !errors.Is(err, policy.ErrSeeded) {
			return fail(fmt.Errorf("publishing the local policy as the first version: %w", err))
		}
	}
	if _, err := c.SyncPolicy(ctx); err != nil {
		// A published version this replica's configuration cannot load
		// (a route it does not know): refuse to serve a different policy
		// from the other replicas.
		return fail(err)
	}
	return c, nil
}

func openPool(ctx context.Context, dsn, name string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("joining the cluster: invalid postgres connection string")
	}
	if pc.ConnConfig.RuntimeParams["application_name"] == "" {
		pc.ConnConfig.RuntimeParams["application_name"] = name
	}
	pc.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("joining the cluster: %w", err)
	}
	return pool, nil
}

// Replica is this replica's id in audit_records.
func (c *Cluster) Replica() string { return c.replica }

// PolicyVersion is the published policy version in force (0 before any).
func (c *Cluster) PolicyVersion() int64 { return c.applied.Load() }

// Shipper is the audit shipper (tests sync it by hand).
func (c *Cluster) Shipper() *audit.PGShipper { return c.shipper }

// Run ships the audit trail and follows published policy versions until
// ctx ends. It never fails: while the database is down it retries, and
// the gateway goes on with what it has (docs/scale-out.md, fail-static).
func (c *Cluster) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = c.shipper.Run(ctx)
	}()
	c.followPolicy(ctx)
	wg.Wait()
}

// followPolicy installs new versions on notification and on a periodic
// check; a lost subscription is reopened on the next tick.
func (c *Cluster) followPolicy(ctx context.Context) {
	var changes <-chan store.Change
	subscribe := func() {
		if c.notifier == nil || changes != nil {
			return
		}
		ch, err := c.notifier.Subscribe(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("cluster: cannot subscribe to changes; checking the policy periodically", "err", err)
			}
			return
		}
		changes = ch
	}
	subscribe()
	t := time.NewTicker(policyCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ch, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			if ch.Kind != store.ChangePolicy && ch.Kind != store.ChangeResync {
				continue
			}
		case <-t.C:
			subscribe()
		}
		if _, err := c.SyncPolicy(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("cluster: policy check failed; keeping the policy in force", "version", c.applied.Load(), "err", err)
		}
	}
}

// SyncPolicy installs the newest published version if it is not in
// force yet, writes a system audit record naming it, and reports whether
// it changed anything. A version that does not load keeps the policy in
// force and returns the error.
func (c *Cluster) SyncPolicy(ctx context.Context) (bool, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	n, err := c.policy.LatestVersion(ctx)
	if err != nil || n == 0 || n == c.applied.Load() {
		return false, err
	}
	v, err := c.policy.Latest(ctx)
	if err != nil || v == nil {
		return false, err
	}
	if err := c.a.Policy.LoadText(v.Name, v.Text); err != nil {
		return false, fmt.Errorf("installing policy version %d: %w", v.Version, err)
	}
	c.applied.Store(v.Version)
	rec := &audit.Record{Event: audit.EventSystem, Action: "policy_version", Target: fmt.Sprint(v.Version),
		Detail:   fmt.Sprintf(`{"version":%d,"sha256":%q,"pushed_by":%q}`, v.Version, v.SHA256, v.PushedBy),
		Decision: audit.DecisionAllow, Enforced: true}
	if err := c.a.Trail.Append(rec); err != nil {
		c.log.Error("audit policy version", "version", v.Version, "err", err)
	}
	return true, nil
}

// Close ships what the trail holds (the final checkpoint of a clean
// shutdown included: call it after the trail is closed) for at most 10 s,
// then closes the pools. A pod that goes away with an ephemeral volume
// thus leaves its whole chain in the central table.
func (c *Cluster) Close() {
	if c == nil {
		return
	}
	c.closed.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.shipper.Sync(ctx); err != nil {
			c.log.Warn("cluster: final audit shipping incomplete; the local trail keeps the rest", "replica", c.replica, "err", err)
		}
		c.closePools()
	})
}

func (c *Cluster) closePools() {
	if c.apool != nil && c.apool != c.pool {
		c.apool.Close()
	}
	if c.pool != nil {
		c.pool.Close()
	}
}

// PushPolicy publishes the policy file at path as the next version for
// every replica of cfg's cluster (`sekisho policy push`): it is checked
// against cfg first, stored, and announced with store.ChangePolicy;
// replicas that miss the announcement find it within policyCheckEvery.
func PushPolicy(ctx context.Context, cfg *config.Config, name string, text []byte, by string) (*policy.PGVersion, error) {
	if !Clustered(cfg) {
		return nil, errors.New("policy push needs store.driver postgres (policy push は PostgreSQL の構成でのみ使えます)")
	}
	st, err := store.Open(ctx, cfg.Store.Driver, cfg.Store.DSN)
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	defer st.Close()
	pool, err := openPool(ctx, cfg.Store.DSN, "sekisho-policy-push")
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	pp := policy.NewPGPolicy(pool)
	if err := pp.Migrate(ctx); err != nil {
		return nil, err
	}
	v, err := pp.Push(ctx, cfg, name, text, by)
	if err != nil {
		return nil, err
	}
	if n, ok := st.(store.Notifier); ok {
		if err := n.Publish(ctx, store.Change{Kind: store.ChangePolicy, Seq: v.Version}); err != nil {
			// Stored: replicas find it on their periodic check.
			return v, fmt.Errorf("policy version %d stored, but announcing it failed (replicas pick it up within %s): %w", v.Version, policyCheckEvery, err)
		}
	}
	return v, nil
}

// StaleUserGrace is how long a user read before the database became
// unreachable is still believed while it stays unreachable.
const StaleUserGrace = time.Hour

// staleReadTimeout bounds a user read when a cached copy could answer:
// a database that hangs must not hang requests.
const staleReadTimeout = 2 * time.Second

// withStaleUsers wraps st so that GetUser answers with the last user read
// (at most grace old) when the database cannot be reached. A user the
// database says does not exist is never served from memory. Pass the
// result to authn.New: the user cache there keeps users for a second only,
// so without this every session would fail a second into an outage.
// Everything else goes to st unchanged.
func withStaleUsers(st store.Store, grace time.Duration, now func() time.Time, log *slog.Logger) store.Store {
	c, _ := lru.New[string, staleUser](65536)
	return &staleUsers{Store: st, grace: grace, now: now, log: log, c: c}
}

type staleUsers struct {
	store.Store
	grace time.Duration
	now   func() time.Time
	log   *slog.Logger
	c     *lru.Cache[string, staleUser]

	warned atomic.Int64 // unix seconds of the last warning
}

type staleUser struct {
	u  store.User
	at time.Time
}

func (s *staleUsers) GetUser(ctx context.Context, id string) (*store.User, error) {
	old, have := s.c.Get(id)
	if have {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, staleReadTimeout)
		defer cancel()
	}
	u, err := s.Store.GetUser(ctx, id)
	switch {
	case err == nil:
		c := *u
		c.Roles = append([]string(nil), u.Roles...)
		s.c.Add(id, staleUser{u: c, at: s.now()})
		return u, nil
	case errors.Is(err, store.ErrNotFound):
		s.c.Remove(id)
		return nil, err
	case have && s.now().Sub(old.at) < s.grace:
		if now := s.now().Unix(); now-s.warned.Load() >= 60 {
			s.warned.Store(now)
			s.log.Warn("store unreachable: serving users as last read (fail-static) / データベースに接続できないため最後に読んだ利用者情報で継続します", "err", err)
		}
		c := old.u
		c.Roles = append([]string(nil), old.u.Roles...)
		return &c, nil
	default:
		return nil, err
	}
}

// Subscribe and Publish pass through when st is a Notifier.
func (s *staleUsers) Subscribe(ctx context.Context) (<-chan store.Change, error) {
	if n, ok := s.Store.(store.Notifier); ok {
		return n.Subscribe(ctx)
	}
	return nil, errors.New("store: no change notifications")
}

func (s *staleUsers) Publish(ctx context.Context, c store.Change) error {
	if n, ok := s.Store.(store.Notifier); ok {
		return n.Publish(ctx, c)
	}
	return nil
}

// authnStore is the store authn.New gets: fail-static user reads when
// clustered (see withStaleUsers), a.Store otherwise.
func (a *App) authnStore(now func() time.Time) store.Store {
	if !Clustered(a.Config) {
		return a.Store
	}
	return withStaleUsers(a.Store, StaleUserGrace, now, a.log)
}

// AuditQuery reads the central audit table; nil when not clustered (the
// console then reads the local trail).
func (c *Cluster) AuditQuery() func(context.Context, audit.Filter) iter.Seq2[*audit.Record, error] {
	if c == nil {
		return nil
	}
	return func(ctx context.Context, f audit.Filter) iter.Seq2[*audit.Record, error] {
		return audit.QueryPostgres(ctx, c.apool, f)
	}
}
