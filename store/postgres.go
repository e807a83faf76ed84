package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	_ Store    = (*Postgres)(nil)
	_ Notifier = (*Postgres)(nil)
)

// Postgres is the store for several replicas sharing one PostgreSQL
// database. Tables live in the first schema of the connection's
// search_path (set it with search_path=… in the DSN to share a database
// between deployments). Changes that replicas cache are announced with
// pg_notify in the same transaction; see [Postgres.Subscribe].
type Postgres struct {
	pool    *pgxpool.Pool
	schema  string
	channel string
	now     func() time.Time

	hub       *hub
	heartbeat time.Duration

	// The listener: started by the first Subscribe, ended by Close.
	lmu     sync.Mutex
	lctx    context.Context
	lcancel context.CancelFunc
	lwg     sync.WaitGroup
	running bool
}

// pgq is what the pool and a transaction have in common.
type pgq interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// OpenPostgres connects to dsn (a URL or key=value string; pgxpool's
// pool_max_conns and the like apply) and applies pending migrations while
// holding an advisory lock, so replicas starting together do not race.
func OpenPostgres(ctx context.Context, dsn string, opts ...Option) (*Postgres, error) {
	o := buildOptions(opts)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The error may quote the DSN, password included: do not wrap it.
		return nil, errors.New("opening postgres store: parsing dsn: invalid connection string")
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "sekisho"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening postgres store: %w", err)
	}
	p := &Postgres{pool: pool, now: o.now, hub: newHub(), heartbeat: o.heartbeat}
	p.lctx, p.lcancel = context.WithCancel(context.Background())
	var schema *string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("opening postgres store: %w", err)
	}
	if schema == nil {
		pool.Close()
		return nil, errors.New("opening postgres store: no existing schema in search_path")
	}
	p.schema = *schema
	// Channel names are identifiers: at most 63 bytes.
	p.channel = "sekisho." + p.schema
	if len(p.channel) > 63 {
		p.channel = strings.ToValidUTF8(p.channel[:63], "")
	}
	if err := p.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return p, nil
}

// Schema is the schema holding the tables.
func (p *Postgres) Schema() string { return p.schema }

// Close ends subscriptions and closes the pool. Closing again does
// nothing.
func (p *Postgres) Close() error {
	// Under lmu, so that no Subscribe starts a listener after this.
	p.lmu.Lock()
	p.lcancel()
	p.lmu.Unlock()
	p.lwg.Wait()
	p.hub.close()
	p.pool.Close()
	return nil
}

// migrate applies pending migrations, each in its own transaction, while
// holding a session advisory lock keyed on the schema.
func (p *Postgres) migrate(ctx context.Context) error {
	ms, err := loadMigrations("postgres")
	if err != nil {
		return err
	}
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrating postgres schema %s: %w", p.schema, err)
	}
	defer conn.Release()
	const key = `hashtext('sekisho.migrate.' || current_schema())`
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+key+`)`); err != nil {
		return fmt.Errorf("migrating postgres schema %s: taking lock: %w", p.schema, err)
	}
	defer func() {
		// On a broken connection the server drops the lock with it.
		conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+key+`)`)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("migrating postgres schema %s: creating schema_migrations: %w", p.schema, err)
	}
	for _, m := range ms {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrating postgres schema %s: applying %s: %w", p.schema, m.Name, err)
		}
	}
	return nil
}

// SchemaVersion is the highest migration applied.
func (p *Postgres) SchemaVersion(ctx context.Context) (int, error) {
	var v *int
	if err := p.pool.QueryRow(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading postgres schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}

// notify queues c for every listener; PostgreSQL delivers it when tx
// commits and drops it if tx rolls back.
func (p *Postgres) notify(ctx context.Context, q pgq, c Change) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `SELECT pg_notify($1, $2)`, p.channel, string(b))
	return err
}

// withTx runs fn in a transaction and commits if it returns nil.
func (p *Postgres) withTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, p.pool, fn)
}

// pgTime encodes t for a timestamptz parameter; the zero time is NULL.
func pgTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

// fromPG decodes a nullable timestamptz.
func fromPG(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// isFKViolation reports a foreign key violation (SQLSTATE 23503).
func isFKViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// ---- users

func scanPGUser(row pgx.Row) (*User, error) {
	var (
		u              User
		roles          string
		created, updat *time.Time
	)
	if err := row.Scan(&u.ID, &u.DisplayName, &u.Department, &roles, &u.Disabled, &created, &updat); err != nil {
		return nil, err
	}
	var err error
	if u.Roles, err = decodeList(roles); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = fromPG(created), fromPG(updat)
	return &u, nil
}

// CreateUser stores a new user; ErrExists if the id is taken. A zero
// CreatedAt or UpdatedAt is set to now, in u as well.
func (p *Postgres) CreateUser(ctx context.Context, u *User) error {
	if u.ID == "" {
		return fmt.Errorf("creating user: empty id")
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = p.now()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	err := p.withTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO users (`+sqliteUserCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (id) DO NOTHING`,
			u.ID, u.DisplayName, u.Department, encodeList(u.Roles), u.Disabled, pgTime(u.CreatedAt), pgTime(u.UpdatedAt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrExists
		}
		return p.notify(ctx, tx, Change{Kind: ChangeUser, ID: u.ID})
	})
	if err != nil {
		return fmt.Errorf("creating user %q: %w", u.ID, err)
	}
	return nil
}

// UpdateUser replaces a user's name, department, roles and disabled flag;
// CreatedAt is kept. A zero UpdatedAt is set to now, in u as well.
func (p *Postgres) UpdateUser(ctx context.Context, u *User) error {
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = p.now()
	}
	err := p.withTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET display_name = $1, department = $2, roles = $3, disabled = $4, updated_at = $5
			WHERE id = $6`,
			u.DisplayName, u.Department, encodeList(u.Roles), u.Disabled, pgTime(u.UpdatedAt), u.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return p.notify(ctx, tx, Change{Kind: ChangeUser, ID: u.ID})
	})
	if err != nil {
		return fmt.Errorf("updating user %q: %w", u.ID, err)
	}
	return nil
}

// GetUser returns the user with id; ErrNotFound if none.
func (p *Postgres) GetUser(ctx context.Context, id string) (*User, error) {
	u, err := scanPGUser(p.pool.QueryRow(ctx, `SELECT `+sqliteUserCols+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("getting user %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("getting user %q: %w", id, err)
	}
	return u, nil
}

// ListUsers returns every user, ordered by id.
func (p *Postgres) ListUsers(ctx context.Context) ([]*User, error) {
	out, err := pgList(ctx, p.pool, scanPGUser, `SELECT `+sqliteUserCols+` FROM users ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return out, nil
}

// pgList runs a query and scans every row with scan.
func pgList[T any](ctx context.Context, q pgq, scan func(pgx.Row) (*T, error), sql string, args ...any) ([]*T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ---- credentials

func scanPGCred(row pgx.Row) (*Credential, error) {
	var (
		c                 Credential
		signCount         int64
		transports        string
		created, lastUsed *time.Time
	)
	if err := row.Scan(&c.ID, &c.UserID, &c.Name, &c.PublicKey, &c.AttestationType, &c.AAGUID, &signCount, &transports,
		&c.UserPresent, &c.UserVerified, &c.BackupEligible, &c.BackupState, &c.CloneWarning, &created, &lastUsed); err != nil {
		return nil, err
	}
	var err error
	c.SignCount = uint32(signCount)
	c.ID, c.PublicKey, c.AAGUID = cloneBytes(c.ID), cloneBytes(c.PublicKey), cloneBytes(c.AAGUID)
	if c.Transports, err = decodeList(transports); err != nil {
		return nil, err
	}
	c.CreatedAt, c.LastUsedAt = fromPG(created), fromPG(lastUsed)
	return &c, nil
}

// AddCredential stores a new passkey for c.UserID; ErrExists if the
// credential id is taken, ErrNotFound if the user is unknown. A zero
// CreatedAt is set to now, in c as well.
func (p *Postgres) AddCredential(ctx context.Context, c *Credential) error {
	if len(c.ID) == 0 {
		return fmt.Errorf("adding credential: empty id")
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = p.now()
	}
	tag, err := p.pool.Exec(ctx, `INSERT INTO credentials (`+sqliteCredCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (id) DO NOTHING`,
		c.ID, c.UserID, c.Name, nonNil(c.PublicKey), c.AttestationType, c.AAGUID, int64(c.SignCount), encodeList(c.Transports),
		c.UserPresent, c.UserVerified, c.BackupEligible, c.BackupState, c.CloneWarning, pgTime(c.CreatedAt), pgTime(c.LastUsedAt))
	switch {
	case isFKViolation(err):
		return fmt.Errorf("adding credential for user %q: user %w", c.UserID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("adding credential for user %q: %w", c.UserID, err)
	case tag.RowsAffected() == 0:
		return fmt.Errorf("adding credential for user %q: %w", c.UserID, ErrExists)
	}
	return nil
}

// GetCredential returns the credential with id; ErrNotFound if none.
func (p *Postgres) GetCredential(ctx context.Context, id []byte) (*Credential, error) {
	c, err := scanPGCred(p.pool.QueryRow(ctx, `SELECT `+sqliteCredCols+` FROM credentials WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("getting credential: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("getting credential: %w", err)
	}
	return c, nil
}

// ListCredentials returns the user's credentials, oldest first.
func (p *Postgres) ListCredentials(ctx context.Context, userID string) ([]*Credential, error) {
	out, err := pgList(ctx, p.pool, scanPGCred, `SELECT `+sqliteCredCols+` FROM credentials WHERE user_id = $1
		ORDER BY created_at NULLS FIRST, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("listing credentials of %q: %w", userID, err)
	}
	return out, nil
}

// CredentialSummaries implements [Store] in one query.
func (p *Postgres) CredentialSummaries(ctx context.Context) (map[string]CredentialSummary, error) {
	rows, err := p.pool.Query(ctx, `SELECT user_id, count(*), bool_or(clone_warning), max(last_used_at)
		FROM credentials GROUP BY user_id`)
	if err != nil {
		return nil, fmt.Errorf("summarising credentials: %w", err)
	}
	defer rows.Close()
	out := map[string]CredentialSummary{}
	for rows.Next() {
		var (
			user string
			sum  CredentialSummary
			last *time.Time
		)
		if err := rows.Scan(&user, &sum.Count, &sum.CloneWarning, &last); err != nil {
			return nil, fmt.Errorf("summarising credentials: %w", err)
		}
		if last != nil {
			sum.LastUsedAt = last.UTC()
		}
		out[user] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summarising credentials: %w", err)
	}
	return out, nil
}

// UpdateCredentialUse records a login with credential c.ID: sign count,
// flags, clone warning and LastUsedAt (now if zero, in c as well).
func (p *Postgres) UpdateCredentialUse(ctx context.Context, c *Credential) error {
	if c.LastUsedAt.IsZero() {
		c.LastUsedAt = p.now()
	}
	tag, err := p.pool.Exec(ctx, `UPDATE credentials SET sign_count = $1, user_present = $2, user_verified = $3,
		backup_eligible = $4, backup_state = $5, clone_warning = $6, last_used_at = $7 WHERE id = $8`,
		int64(c.SignCount), c.UserPresent, c.UserVerified, c.BackupEligible, c.BackupState, c.CloneWarning, pgTime(c.LastUsedAt), c.ID)
	if err != nil {
		return fmt.Errorf("updating credential use: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("updating credential use: %w", ErrNotFound)
	}
	return nil
}

// RenameCredential renames the user's credential; ErrNotFound unless the
// credential exists and belongs to userID.
func (p *Postgres) RenameCredential(ctx context.Context, userID string, id []byte, name string) error {
	tag, err := p.pool.Exec(ctx, `UPDATE credentials SET name = $1 WHERE id = $2 AND user_id = $3`, name, id, userID)
	if err != nil {
		return fmt.Errorf("renaming credential of %q: %w", userID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("renaming credential of %q: %w", userID, ErrNotFound)
	}
	return nil
}

// DeleteCredential removes the user's credential; ErrNotFound unless the
// credential exists and belongs to userID.
func (p *Postgres) DeleteCredential(ctx context.Context, userID string, id []byte) error {
	tag, err := p.pool.Exec(ctx, `DELETE FROM credentials WHERE id = $1 AND user_id = $2`, id, userID)
	if err != nil {
		return fmt.Errorf("deleting credential of %q: %w", userID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("deleting credential of %q: %w", userID, ErrNotFound)
	}
	return nil
}

// ---- devices

func scanPGDevice(row pgx.Row) (*Device, error) {
	var (
		d               Device
		fps             string
		first, lastSeen *time.Time
	)
	if err := row.Scan(&d.ID, &d.Owner, &d.Department, &fps, &d.Status, &d.Reason, &first, &lastSeen); err != nil {
		return nil, err
	}
	var err error
	if d.Fingerprints, err = decodeList(fps); err != nil {
		return nil, err
	}
	d.FirstSeen, d.LastSeen = fromPG(first), fromPG(lastSeen)
	return &d, nil
}

// UpsertDevice creates the device or replaces its fields. FirstSeen, once
// stored, is kept. An empty Status means [DeviceActive].
func (p *Postgres) UpsertDevice(ctx context.Context, d *Device) error {
	if d.ID == "" {
		return fmt.Errorf("upserting device: empty id")
	}
	status := d.Status
	if status == "" {
		status = DeviceActive
	}
	err := p.withTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO devices (`+sqliteDeviceCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, department = excluded.department,
				fingerprints = excluded.fingerprints, status = excluded.status, reason = excluded.reason,
				first_seen = coalesce(devices.first_seen, excluded.first_seen), last_seen = excluded.last_seen`,
			d.ID, d.Owner, d.Department, encodeList(d.Fingerprints), status, d.Reason, pgTime(d.FirstSeen), pgTime(d.LastSeen))
		if err != nil {
			return err
		}
		return p.notify(ctx, tx, Change{Kind: ChangeDevice, ID: d.ID})
	})
	if err != nil {
		return fmt.Errorf("upserting device %q: %w", d.ID, err)
	}
	return nil
}

// GetDevice returns the device with id; ErrNotFound if none.
func (p *Postgres) GetDevice(ctx context.Context, id string) (*Device, error) {
	d, err := scanPGDevice(p.pool.QueryRow(ctx, `SELECT `+sqliteDeviceCols+` FROM devices WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("getting device %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("getting device %q: %w", id, err)
	}
	return d, nil
}

// ListDevices returns every device, ordered by id.
func (p *Postgres) ListDevices(ctx context.Context) ([]*Device, error) {
	out, err := pgList(ctx, p.pool, scanPGDevice, `SELECT `+sqliteDeviceCols+` FROM devices ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("listing devices: %w", err)
	}
	return out, nil
}

// TouchDevice records that device id was seen at with certificate
// fingerprint fp: fp joins Fingerprints if new, LastSeen becomes at (it
// never moves back), FirstSeen is set if unset. ErrNotFound if the device
// is unknown. One UPDATE, so concurrent touches lose nothing.
func (p *Postgres) TouchDevice(ctx context.Context, id, fp string, at time.Time) error {
	tag, err := p.pool.Exec(ctx, `UPDATE devices SET
			fingerprints = CASE WHEN $2::text = '' OR fingerprints ? $2::text THEN fingerprints
				ELSE fingerprints || to_jsonb($2::text) END,
			first_seen = coalesce(first_seen, $3::timestamptz),
			last_seen = greatest(last_seen, $3::timestamptz)
		WHERE id = $1`, id, fp, pgTime(at))
	if err != nil {
		return fmt.Errorf("touching device %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("touching device %q: %w", id, ErrNotFound)
	}
	return nil
}

// ---- invitations

func scanPGInv(row pgx.Row) (*Invitation, error) {
	var (
		inv                    Invitation
		created, expires, used *time.Time
	)
	if err := row.Scan(&inv.TokenHash, &inv.UserID, &inv.CreatedBy, &created, &expires, &used); err != nil {
		return nil, err
	}
	inv.TokenHash = cloneBytes(inv.TokenHash)
	inv.CreatedAt, inv.ExpiresAt, inv.UsedAt = fromPG(created), fromPG(expires), fromPG(used)
	return &inv, nil
}

// CreateInvitation stores a new invitation; ErrExists if the hash is
// taken. ExpiresAt is required; a zero CreatedAt is set to now.
func (p *Postgres) CreateInvitation(ctx context.Context, inv *Invitation) error {
	if len(inv.TokenHash) == 0 || inv.ExpiresAt.IsZero() {
		return fmt.Errorf("creating invitation for %q: token hash and expiry are required", inv.UserID)
	}
	if inv.CreatedAt.IsZero() {
		inv.CreatedAt = p.now()
	}
	tag, err := p.pool.Exec(ctx, `INSERT INTO invitations (`+sqliteInvCols+`) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (token_hash) DO NOTHING`,
		inv.TokenHash, inv.UserID, inv.CreatedBy, pgTime(inv.CreatedAt), pgTime(inv.ExpiresAt), pgTime(inv.UsedAt))
	if err != nil {
		return fmt.Errorf("creating invitation for %q: %w", inv.UserID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("creating invitation for %q: %w", inv.UserID, ErrExists)
	}
	return nil
}

// ConsumeInvitation marks the invitation used at now in one UPDATE; a
// concurrent caller waits on the row lock, then sees used_at set, so
// exactly one wins.
func (p *Postgres) ConsumeInvitation(ctx context.Context, tokenHash []byte, now time.Time) (*Invitation, error) {
	inv, err := scanPGInv(p.pool.QueryRow(ctx, `UPDATE invitations SET used_at = $1
		WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
		RETURNING `+sqliteInvCols, now.UTC(), tokenHash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("consuming invitation: %w", p.invitationMiss(ctx, tokenHash))
	}
	if err != nil {
		return nil, fmt.Errorf("consuming invitation: %w", err)
	}
	return inv, nil
}

// ConsumeChallenge implements [Store]: the primary key makes exactly one
// of concurrent callers, on any replica, insert the row.
func (p *Postgres) ConsumeChallenge(ctx context.Context, hash []byte, expires time.Time) error {
	tag, err := p.pool.Exec(ctx, `INSERT INTO used_challenges (hash, expires_at) VALUES ($1, $2)
		ON CONFLICT (hash) DO NOTHING`, hash, expires.UTC())
	if err != nil {
		return fmt.Errorf("consuming challenge: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrChallengeUsed
	}
	return nil
}

// PeekInvitation returns the invitation if it is unused and unexpired at
// now, without consuming it.
func (p *Postgres) PeekInvitation(ctx context.Context, tokenHash []byte, now time.Time) (*Invitation, error) {
	inv, err := scanPGInv(p.pool.QueryRow(ctx, `SELECT `+sqliteInvCols+` FROM invitations
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2`, tokenHash, now.UTC()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("peeking invitation: %w", p.invitationMiss(ctx, tokenHash))
	}
	if err != nil {
		return nil, fmt.Errorf("peeking invitation: %w", err)
	}
	return inv, nil
}

func (p *Postgres) invitationMiss(ctx context.Context, tokenHash []byte) error {
	var n int
	if err := p.pool.QueryRow(ctx, `SELECT count(*) FROM invitations WHERE token_hash = $1`, tokenHash).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return ErrInvitationUsed
}

// ---- sessions

func scanPGSession(row pgx.Row) (*Session, error) {
	var (
		ss                         Session
		amr                        string
		created, expires, lastSeen *time.Time
	)
	if err := row.Scan(&ss.ID, &ss.UserID, &ss.Device, &ss.CertFP, &amr, &ss.IP, &created, &expires, &lastSeen); err != nil {
		return nil, err
	}
	var err error
	if ss.AMR, err = decodeList(amr); err != nil {
		return nil, err
	}
	ss.CreatedAt, ss.ExpiresAt, ss.LastSeen = fromPG(created), fromPG(expires), fromPG(lastSeen)
	return &ss, nil
}

// CreateSession stores a new session record; ErrExists if the id is
// taken. A zero CreatedAt is set to now, in ss as well.
func (p *Postgres) CreateSession(ctx context.Context, ss *Session) error {
	if ss.ID == "" {
		return fmt.Errorf("creating session: empty id")
	}
	if ss.CreatedAt.IsZero() {
		ss.CreatedAt = p.now()
	}
	tag, err := p.pool.Exec(ctx, `INSERT INTO sessions (`+sqliteSessionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (id) DO NOTHING`,
		ss.ID, ss.UserID, ss.Device, ss.CertFP, encodeList(ss.AMR), ss.IP,
		pgTime(ss.CreatedAt), pgTime(ss.ExpiresAt), pgTime(ss.LastSeen))
	if err != nil {
		return fmt.Errorf("creating session for %q: %w", ss.UserID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("creating session for %q: %w", ss.UserID, ErrExists)
	}
	return nil
}

// GetSession returns the session record with id, expired or not;
// ErrNotFound if none.
func (p *Postgres) GetSession(ctx context.Context, id string) (*Session, error) {
	ss, err := scanPGSession(p.pool.QueryRow(ctx, `SELECT `+sqliteSessionCols+` FROM sessions WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("getting session: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("getting session: %w", err)
	}
	return ss, nil
}

// ListSessions returns the user's sessions (every session if userID is
// empty), oldest first.
func (p *Postgres) ListSessions(ctx context.Context, userID string) ([]*Session, error) {
	out, err := pgList(ctx, p.pool, scanPGSession, `SELECT `+sqliteSessionCols+` FROM sessions
		WHERE $1::text = '' OR user_id = $1 ORDER BY created_at NULLS FIRST, id COLLATE "C"`, userID)
	if err != nil {
		return nil, fmt.Errorf("listing sessions of %q: %w", userID, err)
	}
	return out, nil
}

// TouchSession sets the session's LastSeen to at; ErrNotFound if none.
func (p *Postgres) TouchSession(ctx context.Context, id string, at time.Time) error {
	tag, err := p.pool.Exec(ctx, `UPDATE sessions SET last_seen = $1 WHERE id = $2`, pgTime(at), id)
	if err != nil {
		return fmt.Errorf("touching session: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("touching session: %w", ErrNotFound)
	}
	return nil
}

// DeleteSession removes the session record; ErrNotFound if none.
func (p *Postgres) DeleteSession(ctx context.Context, id string) error {
	tag, err := p.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("deleting session: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("deleting session: %w", ErrNotFound)
	}
	return nil
}

// ---- revocations

// AddRevocation stores r and sets r.Seq (and r.At to now if zero). Inserts
// are serialized by a transaction advisory lock so that Seq order is
// commit order, and the change is announced in the same transaction.
func (p *Postgres) AddRevocation(ctx context.Context, r *Revocation) error {
	if r.Kind == "" {
		return fmt.Errorf("adding revocation: empty kind")
	}
	if r.At.IsZero() {
		r.At = p.now()
	}
	var seq int64
	err := p.withTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('sekisho.revocations.' || current_schema()))`); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO revocations (kind, subject, at, by, reason) VALUES ($1, $2, $3, $4, $5)
			RETURNING seq`, r.Kind, r.Subject, r.At.UTC(), r.By, r.Reason).Scan(&seq); err != nil {
			return err
		}
		return p.notify(ctx, tx, Change{Kind: ChangeRevocation, Seq: seq})
	})
	if err != nil {
		return fmt.Errorf("adding %s revocation of %q: %w", r.Kind, r.Subject, err)
	}
	r.Seq = seq
	return nil
}

func scanPGRevocation(row pgx.Row) (*Revocation, error) {
	var (
		r  Revocation
		at *time.Time
	)
	if err := row.Scan(&r.Seq, &r.Kind, &r.Subject, &at, &r.By, &r.Reason); err != nil {
		return nil, err
	}
	r.At = fromPG(at)
	return &r, nil
}

// RevocationsSince returns revocations with Seq > seq, in Seq order.
func (p *Postgres) RevocationsSince(ctx context.Context, seq int64) ([]*Revocation, error) {
	out, err := pgList(ctx, p.pool, scanPGRevocation,
		`SELECT seq, kind, subject, at, by, reason FROM revocations WHERE seq > $1 ORDER BY seq`, seq)
	if err != nil {
		return nil, fmt.Errorf("listing revocations since %d: %w", seq, err)
	}
	return out, nil
}

// ---- keys

func scanPGKey(row pgx.Row) (*Key, error) {
	var (
		k                 Key
		created, notAfter *time.Time
	)
	if err := row.Scan(&k.ID, &k.Use, &k.JWK, &created, &notAfter); err != nil {
		return nil, err
	}
	k.JWK = cloneBytes(k.JWK)
	k.CreatedAt, k.NotAfter = fromPG(created), fromPG(notAfter)
	return &k, nil
}

// PutKey stores k, replacing the key with the same id. A zero CreatedAt
// is set to now, in k as well.
func (p *Postgres) PutKey(ctx context.Context, k *Key) error {
	if k.ID == "" || k.Use == "" || len(k.JWK) == 0 {
		return fmt.Errorf("putting key %q: id, use and jwk are required", k.ID)
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = p.now()
	}
	err := p.withTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO keys (id, use, jwk, created_at, not_after) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (id) DO UPDATE SET use = excluded.use, jwk = excluded.jwk,
				created_at = excluded.created_at, not_after = excluded.not_after`,
			k.ID, k.Use, k.JWK, pgTime(k.CreatedAt), pgTime(k.NotAfter))
		if err != nil {
			return err
		}
		return p.notify(ctx, tx, Change{Kind: ChangeKey, ID: k.ID})
	})
	if err != nil {
		return fmt.Errorf("putting key %q: %w", k.ID, err)
	}
	return nil
}

// ListKeys returns the keys for use (every key if use is empty), oldest
// first.
func (p *Postgres) ListKeys(ctx context.Context, use string) ([]*Key, error) {
	out, err := pgList(ctx, p.pool, scanPGKey, `SELECT id, use, jwk, created_at, not_after FROM keys
		WHERE $1::text = '' OR use = $1 ORDER BY created_at NULLS FIRST, id COLLATE "C"`, use)
	if err != nil {
		return nil, fmt.Errorf("listing %s keys: %w", use, err)
	}
	return out, nil
}

// DeleteKeys implements [Store].
func (p *Postgres) DeleteKeys(ctx context.Context, use string, before time.Time) (int64, error) {
	if use == "" {
		return 0, errors.New("deleting keys: a use is required")
	}
	t, err := p.pool.Exec(ctx, `DELETE FROM keys WHERE use = $1 AND not_after IS NOT NULL AND not_after < $2`, use, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("deleting %s keys: %w", use, err)
	}
	return t.RowsAffected(), nil
}
