package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sekisho/sekisho/config"
)

// Policy in PostgreSQL
//
// With several replicas the policy lives in the table policy_versions: one
// row per published version holding the whole policy file's text, as
// people wrote it (comments, order and line numbers kept, so positions in
// decisions and explain still point at lines a person can read). A
// version is immutable; publishing appends a row with the next number,
// and every replica installs the highest number. Storing the file rather
// than Casbin's "p, …" lines keeps one format for people, for `policy
// test` and `policy explain`, and for the database, and makes a version
// a single row that a replica either has whole or not at all.

// PGQuerier is what a *pgxpool.Pool, a *pgx.Conn and a pgx.Tx have in
// common.
type PGQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// PGPolicy is the policy_versions table.
type PGPolicy struct{ db PGQuerier }

// NewPGPolicy uses db's current schema. Call [PGPolicy.Migrate] once.
func NewPGPolicy(db PGQuerier) *PGPolicy { return &PGPolicy{db: db} }

// PGVersion is one published policy.
type PGVersion struct {
	Version  int64
	Name     string // the file's base name, used in rule positions
	Text     []byte
	SHA256   string // hex of Text
	PushedBy string
	PushedAt time.Time
}

// Migrate creates policy_versions if it does not exist.
func (p *PGPolicy) Migrate(ctx context.Context) error {
	_, err := p.db.Exec(ctx, `
		SELECT pg_advisory_xact_lock(hashtext('sekisho.policy.' || current_schema()));
		CREATE TABLE IF NOT EXISTS policy_versions (
			version   bigint      PRIMARY KEY,
			name      text        NOT NULL,
			text      text        NOT NULL,
			sha256    text        NOT NULL,
			pushed_by text        NOT NULL,
			pushed_at timestamptz NOT NULL DEFAULT now()
		)`)
	if err != nil {
		return fmt.Errorf("creating policy_versions: %w", err)
	}
	return nil
}

// ErrSamePolicy is returned by Push when the text equals the newest
// version's: nothing is published.
var ErrSamePolicy = errors.New("policy: the text is the version already in force")

// Push checks text against cfg exactly as a replica will load it and
// publishes it as the next version. A policy that does not load is
// refused with the file:line errors and nothing is stored. Replicas learn
// of it through the caller's notification (store.Notifier with
// store.ChangePolicy) or their periodic check.
func (p *PGPolicy) Push(ctx context.Context, cfg *config.Config, name string, text []byte, by string) (*PGVersion, error) {
	return p.push(ctx, cfg, name, text, by, false)
}

// ErrSeeded is returned by Seed when a version exists already.
var ErrSeeded = errors.New("policy: policy_versions already holds a version")

// Seed publishes text as version 1 only if no version exists, so that
// replicas starting together with different files cannot both publish.
func (p *PGPolicy) Seed(ctx context.Context, cfg *config.Config, name string, text []byte, by string) (*PGVersion, error) {
	return p.push(ctx, cfg, name, text, by, true)
}

func (p *PGPolicy) push(ctx context.Context, cfg *config.Config, name string, text []byte, by string, seed bool) (*PGVersion, error) {
	loc, err := Location(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := compile(cfg, name, text, loc, time.Now()); err != nil {
		return nil, fmt.Errorf("checking policy %s before publishing: %w", name, err)
	}
	b, ok := p.db.(interface {
		Begin(context.Context) (pgx.Tx, error)
	})
	if !ok {
		return nil, errors.New("publishing policy: need a pool or connection that can begin a transaction")
	}
	sum := sha256.Sum256(text)
	v := &PGVersion{Name: name, Text: text, SHA256: hex.EncodeToString(sum[:]), PushedBy: by}
	err = pgx.BeginFunc(ctx, b, func(tx pgx.Tx) error {
		// Serialise publishers: the next number is max+1.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('sekisho.policy.' || current_schema()))`); err != nil {
			return err
		}
		var last *string
		if err := tx.QueryRow(ctx, `SELECT sha256 FROM policy_versions ORDER BY version DESC LIMIT 1`).Scan(&last); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if seed && last != nil {
			return ErrSeeded
		}
		if last != nil && *last == v.SHA256 {
			return ErrSamePolicy
		}
		return tx.QueryRow(ctx, `INSERT INTO policy_versions (version, name, text, sha256, pushed_by)
			SELECT coalesce(max(version), 0) + 1, $1, $2, $3, $4 FROM policy_versions
			RETURNING version, pushed_at`, v.Name, string(text), v.SHA256, by).Scan(&v.Version, &v.PushedAt)
	})
	if errors.Is(err, ErrSamePolicy) || errors.Is(err, ErrSeeded) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("publishing policy %s: %w", name, err)
	}
	return v, nil
}

// Latest returns the newest version, or nil when none was published.
func (p *PGPolicy) Latest(ctx context.Context) (*PGVersion, error) {
	v := &PGVersion{}
	var text string
	err := p.db.QueryRow(ctx, `SELECT version, name, text, sha256, pushed_by, pushed_at FROM policy_versions
		ORDER BY version DESC LIMIT 1`).Scan(&v.Version, &v.Name, &text, &v.SHA256, &v.PushedBy, &v.PushedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the newest policy version: %w", err)
	}
	v.Text = []byte(text)
	return v, nil
}

// LatestVersion returns the newest version number, 0 when none: a cheap
// check for replicas that may have missed a notification.
func (p *PGPolicy) LatestVersion(ctx context.Context) (int64, error) {
	var n *int64
	if err := p.db.QueryRow(ctx, `SELECT max(version) FROM policy_versions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("reading the newest policy version: %w", err)
	}
	if n == nil {
		return 0, nil
	}
	return *n, nil
}

// Adapter is a Casbin [persist.Adapter] over the newest version, for tools
// that build their own Casbin enforcer with [ModelText]. It is read-only,
// like the file adapter: a policy is changed by publishing a whole file.
func (p *PGPolicy) Adapter(ctx context.Context) persist.Adapter { return &pgAdapter{p: p, ctx: ctx} }

type pgAdapter struct {
	p   *PGPolicy
	ctx context.Context
}

var _ persist.Adapter = (*pgAdapter)(nil)

var errPGReadOnly = errors.New("policy: the postgres adapter is read-only; publish a whole policy file (sekisho policy push)")

func (a *pgAdapter) LoadPolicy(m model.Model) error {
	v, err := a.p.Latest(a.ctx)
	if err != nil {
		return err
	}
	if v == nil {
		return errors.New("policy: no policy version in postgres")
	}
	f, err := Parse(v.Name, v.Text)
	if err != nil {
		return fmt.Errorf("policy version %d: %w", v.Version, err)
	}
	return (&fileAdapter{f: f}).LoadPolicy(m)
}

func (a *pgAdapter) SavePolicy(model.Model) error                              { return errPGReadOnly }
func (a *pgAdapter) AddPolicy(string, string, []string) error                  { return errPGReadOnly }
func (a *pgAdapter) RemovePolicy(string, string, []string) error               { return errPGReadOnly }
func (a *pgAdapter) RemoveFilteredPolicy(string, string, int, ...string) error { return errPGReadOnly }

// LoadText installs a policy given as text (a version read from
// PostgreSQL) instead of the file. Like [Engine.Reload], a text that does
// not load keeps the policy in force and is logged, counted and returned.
// A replica that follows PostgreSQL must not also watch its file: the
// next file reload would replace the published version.
func (e *Engine) LoadText(name string, text []byte) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	c, err := compile(e.cfg, name, text, e.loc, e.clock())
	if err == nil && e.cacheSize > 0 {
		c.cache, err = lru.New[string, cacheEntry](e.cacheSize)
	}
	if err != nil {
		e.reloads.WithLabelValues("error").Inc()
		e.log.Error("policy load failed; keeping the policy in force", "source", name, "version", e.Version(), "err", err)
		return fmt.Errorf("loading policy %s: %w", name, err)
	}
	e.install(c)
	e.reloads.WithLabelValues("ok").Inc()
	e.log.Info("policy loaded", "source", name, "version", c.version, "rules", len(c.file.Rules))
	return nil
}

// PolicyText returns the policy file's text, for seeding policy_versions
// from a replica's file.
func PolicyText(cfg *config.Config) (name string, text []byte, err error) {
	path := PolicyPath(cfg)
	text, err = os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("reading policy %s: %w", path, err)
	}
	return filepath.Base(path), text, nil
}
