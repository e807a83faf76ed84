package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go, no cgo)
)

// DefaultSQLitePath is the database file used when the DSN is empty.
const DefaultSQLitePath = "data/sekisho.db"

var (
	_ Store    = (*SQLite)(nil)
	_ Notifier = (*SQLite)(nil)
)

// SQLite is the embedded store: one database file in WAL mode. Writes go
// through a single connection whose transactions begin IMMEDIATE, so
// writers queue in Go instead of failing with SQLITE_BUSY; reads use a
// separate pool and see the last committed state. Other processes that
// open the same file wait up to the busy timeout for the write lock.
type SQLite struct {
	w    *sql.DB // exactly one connection; every write
	r    *sql.DB // readers; the same as w for an in-memory database
	path string
	now  func() time.Time
	hub  *hub
	// getUser is GetUser's query, prepared once on the readers: the
	// request path reads each active user about once a second (authn's
	// user cache), and preparing the statement was about half of each
	// read (docs/performance.md, session 14).
	getUser *sql.Stmt

	closeOnce sync.Once
	closeErr  error
}

// sqliteBusyTimeout is how long a connection waits for another process's
// write lock before giving up with SQLITE_BUSY.
const sqliteBusyTimeout = 10 * time.Second

// OpenSQLite opens (creating if needed) the database file at path,
// creating its directory with mode 0700 and the file with mode 0600, and
// applies pending migrations. An empty path means [DefaultSQLitePath];
// ":memory:" gives a private in-memory database (for tests).
func OpenSQLite(ctx context.Context, path string, opts ...Option) (*SQLite, error) {
	o := buildOptions(opts)
	if path == "" {
		path = DefaultSQLitePath
	}
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("opening sqlite store %q: dsn must be a plain file path", path)
	}
	s := &SQLite{path: path, now: o.now, hub: newHub()}
	params := func(extra ...string) string {
		q := url.Values{}
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "synchronous(NORMAL)")
		for i := 0; i+1 < len(extra); i += 2 {
			q.Add(extra[i], extra[i+1])
		}
		return q.Encode()
	}
	if path == ":memory:" {
		db, err := sql.Open("sqlite", path+"?"+params("_txlock", "immediate"))
		if err != nil {
			return nil, fmt.Errorf("opening sqlite store in memory: %w", err)
		}
		// One connection forever: a second one would see another database.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		s.w, s.r = db, db
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("creating directory for sqlite store %s: %w", path, err)
		}
		// Create the file ourselves so it is private; SQLite gives the
		// -wal and -shm files the same mode.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("creating sqlite store %s: %w", path, err)
		}
		f.Close()
		w, err := sql.Open("sqlite", path+"?"+params("_pragma", "journal_mode(WAL)", "_txlock", "immediate"))
		if err != nil {
			return nil, fmt.Errorf("opening sqlite store %s: %w", path, err)
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxLifetime(0)
		w.SetConnMaxIdleTime(0)
		// The writer sets WAL mode (persistent in the file) before any
		// reader connects. Switching a new file to WAL can answer
		// SQLITE_BUSY at once, without the busy handler, while another
		// process opens the same file (a CLI verb beside a starting
		// gateway): retry for a while.
		var err2 error
		for deadline := time.Now().Add(sqliteBusyTimeout); ; time.Sleep(50 * time.Millisecond) {
			if err2 = w.PingContext(ctx); err2 == nil || !isBusy(err2) || time.Now().After(deadline) {
				break
			}
			w.Close()
			if w, err2 = sql.Open("sqlite", path+"?"+params("_pragma", "journal_mode(WAL)", "_txlock", "immediate")); err2 != nil {
				break
			}
			w.SetMaxOpenConns(1)
			w.SetMaxIdleConns(1)
			w.SetConnMaxLifetime(0)
			w.SetConnMaxIdleTime(0)
		}
		if err2 != nil {
			if w != nil {
				w.Close()
			}
			return nil, fmt.Errorf("opening sqlite store %s: %w", path, err2)
		}
		r, err := sql.Open("sqlite", path+"?"+params("_pragma", "query_only(1)"))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("opening sqlite store %s for reading: %w", path, err)
		}
		r.SetMaxOpenConns(4)
		r.SetMaxIdleConns(4)
		s.w, s.r = w, r
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	var err error
	if s.getUser, err = s.r.PrepareContext(ctx, `SELECT `+sqliteUserCols+` FROM users WHERE id = ?`); err != nil {
		s.Close()
		return nil, fmt.Errorf("opening sqlite store %s: preparing a query: %w", path, err)
	}
	return s, nil
}

// Path is the database file.
func (s *SQLite) Path() string { return s.path }

// Close closes the database and ends subscriptions. Closing again does
// nothing and returns the first result.
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() {
		s.hub.close()
		if s.getUser != nil {
			s.getUser.Close()
		}
		var errR error
		if s.r != s.w {
			errR = s.r.Close()
		}
		errW := s.w.Close()
		if err := errors.Join(errW, errR); err != nil {
			s.closeErr = fmt.Errorf("closing sqlite store %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// migrate applies pending migrations, each in its own IMMEDIATE
// transaction that re-checks schema_migrations, so two processes opening
// the same file at once apply each migration exactly once.
func (s *SQLite) migrate(ctx context.Context) error {
	ms, err := loadMigrations("sqlite")
	if err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("migrating sqlite store %s: creating schema_migrations: %w", s.path, err)
	}
	for _, m := range ms {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, sqliteTime(time.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrating sqlite store %s: applying %s: %w", s.path, m.Name, err)
		}
	}
	return nil
}

// tx runs fn in a write transaction and commits if it returns nil.
func (s *SQLite) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// SchemaVersion is the highest migration applied.
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading sqlite schema version: %w", err)
	}
	return int(v.Int64), nil
}

// Subscribe implements [Notifier] within this process: changes made
// through this *SQLite are delivered; changes made by another process on
// the same file are not.
func (s *SQLite) Subscribe(ctx context.Context) (<-chan Change, error) {
	return s.hub.subscribe(ctx)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

type scanner interface{ Scan(dest ...any) error }

// collectSQLite reads every row of a listing with scan, closing rows; what
// names the listing in errors. err is the query's error, so call sites stay
// one line: rows, err := …; return collectSQLite(rows, err, …).
func collectSQLite[T any](rows *sql.Rows, err error, what string, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// ---- users

const sqliteUserCols = `id, display_name, department, roles, disabled, created_at, updated_at`

func scanSQLiteUser(sc scanner) (*User, error) {
	var (
		u              User
		roles          string
		disabled       int
		created, updat sql.NullString
	)
	if err := sc.Scan(&u.ID, &u.DisplayName, &u.Department, &roles, &disabled, &created, &updat); err != nil {
		return nil, err
	}
	var err error
	u.Disabled = disabled != 0
	if u.Roles, err = decodeList(roles); err != nil {
		return nil, err
	}
	if u.CreatedAt, err = parseSQLiteTime(created); err != nil {
		return nil, err
	}
	if u.UpdatedAt, err = parseSQLiteTime(updat); err != nil {
		return nil, err
	}
	return &u, nil
}

// CreateUser stores a new user; ErrExists if the id is taken. A zero
// CreatedAt or UpdatedAt is set to now, in u as well.
func (s *SQLite) CreateUser(ctx context.Context, u *User) error {
	if u.ID == "" {
		return fmt.Errorf("creating user: empty id")
	}
	now := s.now()
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO users (`+sqliteUserCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		u.ID, u.DisplayName, u.Department, encodeList(u.Roles), boolInt(u.Disabled), sqliteTime(u.CreatedAt), sqliteTime(u.UpdatedAt))
	if err != nil {
		return fmt.Errorf("creating user %q: %w", u.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("creating user %q: %w", u.ID, ErrExists)
	}
	s.hub.publish(Change{Kind: ChangeUser, ID: u.ID})
	return nil
}

// UpdateUser replaces a user's name, department, roles and disabled flag;
// CreatedAt is kept. A zero UpdatedAt is set to now, in u as well.
func (s *SQLite) UpdateUser(ctx context.Context, u *User) error {
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = s.now()
	}
	res, err := s.w.ExecContext(ctx, `UPDATE users SET display_name = ?, department = ?, roles = ?, disabled = ?, updated_at = ?
		WHERE id = ?`,
		u.DisplayName, u.Department, encodeList(u.Roles), boolInt(u.Disabled), sqliteTime(u.UpdatedAt), u.ID)
	if err != nil {
		return fmt.Errorf("updating user %q: %w", u.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("updating user %q: %w", u.ID, ErrNotFound)
	}
	s.hub.publish(Change{Kind: ChangeUser, ID: u.ID})
	return nil
}

// GetUser returns the user with id; ErrNotFound if none.
func (s *SQLite) GetUser(ctx context.Context, id string) (*User, error) {
	u, err := scanSQLiteUser(s.getUser.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("getting user %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("getting user %q: %w", id, err)
	}
	return u, nil
}

// ListUsers returns every user, ordered by id.
func (s *SQLite) ListUsers(ctx context.Context) ([]*User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqliteUserCols+` FROM users ORDER BY id`)
	return collectSQLite(rows, err, "listing users", scanSQLiteUser)
}

// ---- credentials

const sqliteCredCols = `id, user_id, name, public_key, attestation_type, aaguid, sign_count, transports,
	user_present, user_verified, backup_eligible, backup_state, clone_warning, created_at, last_used_at`

func scanSQLiteCred(sc scanner) (*Credential, error) {
	var (
		c                  Credential
		signCount          int64
		transports         string
		up, uv, be, bs, cw int
		created, lastUsed  sql.NullString
	)
	if err := sc.Scan(&c.ID, &c.UserID, &c.Name, &c.PublicKey, &c.AttestationType, &c.AAGUID, &signCount, &transports,
		&up, &uv, &be, &bs, &cw, &created, &lastUsed); err != nil {
		return nil, err
	}
	var err error
	c.SignCount = uint32(signCount)
	c.UserPresent, c.UserVerified, c.BackupEligible, c.BackupState, c.CloneWarning = up != 0, uv != 0, be != 0, bs != 0, cw != 0
	c.ID, c.PublicKey, c.AAGUID = cloneBytes(c.ID), cloneBytes(c.PublicKey), cloneBytes(c.AAGUID)
	if c.Transports, err = decodeList(transports); err != nil {
		return nil, err
	}
	if c.CreatedAt, err = parseSQLiteTime(created); err != nil {
		return nil, err
	}
	if c.LastUsedAt, err = parseSQLiteTime(lastUsed); err != nil {
		return nil, err
	}
	return &c, nil
}

// AddCredential stores a new passkey for c.UserID; ErrExists if the
// credential id is taken, ErrNotFound if the user is unknown. A zero
// CreatedAt is set to now, in c as well.
func (s *SQLite) AddCredential(ctx context.Context, c *Credential) error {
	if len(c.ID) == 0 {
		return fmt.Errorf("adding credential: empty id")
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE id = ?`, c.UserID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("user %q: %w", c.UserID, ErrNotFound)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO credentials (`+sqliteCredCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			c.ID, c.UserID, c.Name, nonNil(c.PublicKey), c.AttestationType, c.AAGUID, int64(c.SignCount), encodeList(c.Transports),
			boolInt(c.UserPresent), boolInt(c.UserVerified), boolInt(c.BackupEligible), boolInt(c.BackupState), boolInt(c.CloneWarning),
			sqliteTime(c.CreatedAt), sqliteTime(c.LastUsedAt))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrExists
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("adding credential for user %q: %w", c.UserID, err)
	}
	return nil
}

// nonNil turns a nil slice into an empty one for NOT NULL BLOB columns.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// GetCredential returns the credential with id; ErrNotFound if none.
func (s *SQLite) GetCredential(ctx context.Context, id []byte) (*Credential, error) {
	c, err := scanSQLiteCred(s.r.QueryRowContext(ctx, `SELECT `+sqliteCredCols+` FROM credentials WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("getting credential: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("getting credential: %w", err)
	}
	return c, nil
}

// ListCredentials returns the user's credentials, oldest first.
func (s *SQLite) ListCredentials(ctx context.Context, userID string) ([]*Credential, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqliteCredCols+` FROM credentials WHERE user_id = ? ORDER BY created_at, id`, userID)
	return collectSQLite(rows, err, fmt.Sprintf("listing credentials of %q", userID), scanSQLiteCred)
}

// CredentialSummaries implements [Store] in one query.
func (s *SQLite) CredentialSummaries(ctx context.Context) (map[string]CredentialSummary, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT user_id, count(*), max(clone_warning), max(last_used_at)
		FROM credentials GROUP BY user_id`)
	if err != nil {
		return nil, fmt.Errorf("summarising credentials: %w", err)
	}
	defer rows.Close()
	out := map[string]CredentialSummary{}
	for rows.Next() {
		var (
			user  string
			sum   CredentialSummary
			clone int
			last  sql.NullString
		)
		if err := rows.Scan(&user, &sum.Count, &clone, &last); err != nil {
			return nil, fmt.Errorf("summarising credentials: %w", err)
		}
		sum.CloneWarning = clone != 0
		if sum.LastUsedAt, err = parseSQLiteTime(last); err != nil {
			return nil, fmt.Errorf("summarising credentials of %q: %w", user, err)
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
func (s *SQLite) UpdateCredentialUse(ctx context.Context, c *Credential) error {
	if c.LastUsedAt.IsZero() {
		c.LastUsedAt = s.now()
	}
	res, err := s.w.ExecContext(ctx, `UPDATE credentials SET sign_count = ?, user_present = ?, user_verified = ?,
		backup_eligible = ?, backup_state = ?, clone_warning = ?, last_used_at = ? WHERE id = ?`,
		int64(c.SignCount), boolInt(c.UserPresent), boolInt(c.UserVerified), boolInt(c.BackupEligible), boolInt(c.BackupState),
		boolInt(c.CloneWarning), sqliteTime(c.LastUsedAt), c.ID)
	if err != nil {
		return fmt.Errorf("updating credential use: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("updating credential use: %w", ErrNotFound)
	}
	return nil
}

// RenameCredential renames the user's credential; ErrNotFound unless the
// credential exists and belongs to userID.
func (s *SQLite) RenameCredential(ctx context.Context, userID string, id []byte, name string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE credentials SET name = ? WHERE id = ? AND user_id = ?`, name, id, userID)
	if err != nil {
		return fmt.Errorf("renaming credential of %q: %w", userID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("renaming credential of %q: %w", userID, ErrNotFound)
	}
	return nil
}

// DeleteCredential removes the user's credential; ErrNotFound unless the
// credential exists and belongs to userID.
func (s *SQLite) DeleteCredential(ctx context.Context, userID string, id []byte) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM credentials WHERE id = ? AND user_id = ?`, id, userID)
	if err != nil {
		return fmt.Errorf("deleting credential of %q: %w", userID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("deleting credential of %q: %w", userID, ErrNotFound)
	}
	return nil
}

// ---- devices

const sqliteDeviceCols = `id, owner, department, fingerprints, status, reason, first_seen, last_seen`

func scanSQLiteDevice(sc scanner) (*Device, error) {
	var (
		d               Device
		fps             string
		first, lastSeen sql.NullString
	)
	if err := sc.Scan(&d.ID, &d.Owner, &d.Department, &fps, &d.Status, &d.Reason, &first, &lastSeen); err != nil {
		return nil, err
	}
	var err error
	if d.Fingerprints, err = decodeList(fps); err != nil {
		return nil, err
	}
	if d.FirstSeen, err = parseSQLiteTime(first); err != nil {
		return nil, err
	}
	if d.LastSeen, err = parseSQLiteTime(lastSeen); err != nil {
		return nil, err
	}
	return &d, nil
}

// UpsertDevice creates the device or replaces its fields. FirstSeen, once
// stored, is kept. An empty Status means [DeviceActive].
func (s *SQLite) UpsertDevice(ctx context.Context, d *Device) error {
	if d.ID == "" {
		return fmt.Errorf("upserting device: empty id")
	}
	status := d.Status
	if status == "" {
		status = DeviceActive
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO devices (`+sqliteDeviceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, department = excluded.department,
			fingerprints = excluded.fingerprints, status = excluded.status, reason = excluded.reason,
			first_seen = coalesce(devices.first_seen, excluded.first_seen), last_seen = excluded.last_seen`,
		d.ID, d.Owner, d.Department, encodeList(d.Fingerprints), status, d.Reason, sqliteTime(d.FirstSeen), sqliteTime(d.LastSeen))
	if err != nil {
		return fmt.Errorf("upserting device %q: %w", d.ID, err)
	}
	s.hub.publish(Change{Kind: ChangeDevice, ID: d.ID})
	return nil
}

// GetDevice returns the device with id; ErrNotFound if none.
func (s *SQLite) GetDevice(ctx context.Context, id string) (*Device, error) {
	d, err := scanSQLiteDevice(s.r.QueryRowContext(ctx, `SELECT `+sqliteDeviceCols+` FROM devices WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("getting device %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("getting device %q: %w", id, err)
	}
	return d, nil
}

// ListDevices returns every device, ordered by id.
func (s *SQLite) ListDevices(ctx context.Context) ([]*Device, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqliteDeviceCols+` FROM devices ORDER BY id`)
	return collectSQLite(rows, err, "listing devices", scanSQLiteDevice)
}

// TouchDevice records that device id was seen at with certificate
// fingerprint fp: fp joins Fingerprints if new, LastSeen becomes at (it
// never moves back), FirstSeen is set if unset. ErrNotFound if the device
// is unknown.
func (s *SQLite) TouchDevice(ctx context.Context, id, fp string, at time.Time) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var (
			fps             string
			first, lastSeen sql.NullString
		)
		err := tx.QueryRowContext(ctx, `SELECT fingerprints, first_seen, last_seen FROM devices WHERE id = ?`, id).Scan(&fps, &first, &lastSeen)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		l, err := decodeList(fps)
		if err != nil {
			return err
		}
		if fp != "" {
			l = addUnique(l, fp)
		}
		newFirst, newLast := first, lastSeen
		if at := sqliteTime(at); at != nil {
			a := at.(string)
			if !first.Valid || first.String == "" {
				newFirst = sql.NullString{String: a, Valid: true}
			}
			if !lastSeen.Valid || lastSeen.String < a {
				newLast = sql.NullString{String: a, Valid: true}
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE devices SET fingerprints = ?, first_seen = ?, last_seen = ? WHERE id = ?`,
			encodeList(l), newFirst, newLast, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("touching device %q: %w", id, err)
	}
	return nil
}

// ---- invitations

const sqliteInvCols = `token_hash, user_id, created_by, created_at, expires_at, used_at`

func scanSQLiteInv(sc scanner) (*Invitation, error) {
	var (
		inv                    Invitation
		created, expires, used sql.NullString
	)
	if err := sc.Scan(&inv.TokenHash, &inv.UserID, &inv.CreatedBy, &created, &expires, &used); err != nil {
		return nil, err
	}
	var err error
	inv.TokenHash = cloneBytes(inv.TokenHash)
	if inv.CreatedAt, err = parseSQLiteTime(created); err != nil {
		return nil, err
	}
	if inv.ExpiresAt, err = parseSQLiteTime(expires); err != nil {
		return nil, err
	}
	if inv.UsedAt, err = parseSQLiteTime(used); err != nil {
		return nil, err
	}
	return &inv, nil
}

// CreateInvitation stores a new invitation; ErrExists if the hash is
// taken. ExpiresAt is required; a zero CreatedAt is set to now.
func (s *SQLite) CreateInvitation(ctx context.Context, inv *Invitation) error {
	if len(inv.TokenHash) == 0 || inv.ExpiresAt.IsZero() {
		return fmt.Errorf("creating invitation for %q: token hash and expiry are required", inv.UserID)
	}
	if inv.CreatedAt.IsZero() {
		inv.CreatedAt = s.now()
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO invitations (`+sqliteInvCols+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (token_hash) DO NOTHING`,
		inv.TokenHash, inv.UserID, inv.CreatedBy, sqliteTime(inv.CreatedAt), sqliteTime(inv.ExpiresAt), sqliteTime(inv.UsedAt))
	if err != nil {
		return fmt.Errorf("creating invitation for %q: %w", inv.UserID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("creating invitation for %q: %w", inv.UserID, ErrExists)
	}
	return nil
}

// ConsumeInvitation marks the invitation used at now in one UPDATE, so of
// concurrent callers exactly one gets it.
func (s *SQLite) ConsumeInvitation(ctx context.Context, tokenHash []byte, now time.Time) (*Invitation, error) {
	n := sqliteTime(now)
	inv, err := scanSQLiteInv(s.w.QueryRowContext(ctx, `UPDATE invitations SET used_at = ?
		WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?
		RETURNING `+sqliteInvCols, n, tokenHash, n))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("consuming invitation: %w", s.invitationMiss(ctx, tokenHash))
	}
	if err != nil {
		return nil, fmt.Errorf("consuming invitation: %w", err)
	}
	return inv, nil
}

// ConsumeChallenge implements [Store]: the primary key makes exactly one
// of concurrent callers insert the row.
func (s *SQLite) ConsumeChallenge(ctx context.Context, hash []byte, expires time.Time) error {
	res, err := s.w.ExecContext(ctx, `INSERT INTO used_challenges (hash, expires_at) VALUES (?, ?)
		ON CONFLICT (hash) DO NOTHING`, hash, sqliteTime(expires))
	if err != nil {
		return fmt.Errorf("consuming challenge: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrChallengeUsed
	}
	return nil
}

// PeekInvitation returns the invitation if it is unused and unexpired at
// now, without consuming it.
func (s *SQLite) PeekInvitation(ctx context.Context, tokenHash []byte, now time.Time) (*Invitation, error) {
	inv, err := scanSQLiteInv(s.r.QueryRowContext(ctx, `SELECT `+sqliteInvCols+` FROM invitations
		WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`, tokenHash, sqliteTime(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("peeking invitation: %w", s.invitationMiss(ctx, tokenHash))
	}
	if err != nil {
		return nil, fmt.Errorf("peeking invitation: %w", err)
	}
	return inv, nil
}

// invitationMiss tells why no valid invitation matched: ErrNotFound if
// none has the hash, ErrInvitationUsed otherwise.
func (s *SQLite) invitationMiss(ctx context.Context, tokenHash []byte) error {
	var n int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM invitations WHERE token_hash = ?`, tokenHash).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return ErrInvitationUsed
}

// ---- sessions

const sqliteSessionCols = `id, user_id, device, cert_fp, amr, ip, created_at, expires_at, last_seen`

func scanSQLiteSession(sc scanner) (*Session, error) {
	var (
		ss                         Session
		amr                        string
		created, expires, lastSeen sql.NullString
	)
	if err := sc.Scan(&ss.ID, &ss.UserID, &ss.Device, &ss.CertFP, &amr, &ss.IP, &created, &expires, &lastSeen); err != nil {
		return nil, err
	}
	var err error
	if ss.AMR, err = decodeList(amr); err != nil {
		return nil, err
	}
	if ss.CreatedAt, err = parseSQLiteTime(created); err != nil {
		return nil, err
	}
	if ss.ExpiresAt, err = parseSQLiteTime(expires); err != nil {
		return nil, err
	}
	if ss.LastSeen, err = parseSQLiteTime(lastSeen); err != nil {
		return nil, err
	}
	return &ss, nil
}

// CreateSession stores a new session record; ErrExists if the id is
// taken. A zero CreatedAt is set to now, in ss as well.
func (s *SQLite) CreateSession(ctx context.Context, ss *Session) error {
	if ss.ID == "" {
		return fmt.Errorf("creating session: empty id")
	}
	if ss.CreatedAt.IsZero() {
		ss.CreatedAt = s.now()
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO sessions (`+sqliteSessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		ss.ID, ss.UserID, ss.Device, ss.CertFP, encodeList(ss.AMR), ss.IP,
		sqliteTime(ss.CreatedAt), sqliteTime(ss.ExpiresAt), sqliteTime(ss.LastSeen))
	if err != nil {
		return fmt.Errorf("creating session for %q: %w", ss.UserID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("creating session for %q: %w", ss.UserID, ErrExists)
	}
	return nil
}

// GetSession returns the session record with id, expired or not;
// ErrNotFound if none.
func (s *SQLite) GetSession(ctx context.Context, id string) (*Session, error) {
	ss, err := scanSQLiteSession(s.r.QueryRowContext(ctx, `SELECT `+sqliteSessionCols+` FROM sessions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("getting session: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("getting session: %w", err)
	}
	return ss, nil
}

// ListSessions returns the user's sessions (every session if userID is
// empty), oldest first.
func (s *SQLite) ListSessions(ctx context.Context, userID string) ([]*Session, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sqliteSessionCols+` FROM sessions
		WHERE ? = '' OR user_id = ? ORDER BY created_at, id`, userID, userID)
	return collectSQLite(rows, err, fmt.Sprintf("listing sessions of %q", userID), scanSQLiteSession)
}

// TouchSession sets the session's LastSeen to at; ErrNotFound if none.
func (s *SQLite) TouchSession(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE sessions SET last_seen = ? WHERE id = ?`, sqliteTime(at), id)
	if err != nil {
		return fmt.Errorf("touching session: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("touching session: %w", ErrNotFound)
	}
	return nil
}

// DeleteSession removes the session record; ErrNotFound if none.
func (s *SQLite) DeleteSession(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("deleting session: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("deleting session: %w", ErrNotFound)
	}
	return nil
}

// ---- revocations

// AddRevocation stores r and sets r.Seq (and r.At to now if zero).
func (s *SQLite) AddRevocation(ctx context.Context, r *Revocation) error {
	if r.Kind == "" {
		return fmt.Errorf("adding revocation: empty kind")
	}
	if r.At.IsZero() {
		r.At = s.now()
	}
	var seq int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO revocations (kind, subject, at, by, reason) VALUES (?, ?, ?, ?, ?)
		RETURNING seq`, r.Kind, r.Subject, sqliteTime(r.At), r.By, r.Reason).Scan(&seq)
	if err != nil {
		return fmt.Errorf("adding %s revocation of %q: %w", r.Kind, r.Subject, err)
	}
	r.Seq = seq
	s.hub.publish(Change{Kind: ChangeRevocation, Seq: seq})
	return nil
}

// RevocationsSince returns revocations with Seq > seq, in Seq order.
func (s *SQLite) RevocationsSince(ctx context.Context, seq int64) ([]*Revocation, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, kind, subject, at, by, reason FROM revocations WHERE seq > ? ORDER BY seq`, seq)
	return collectSQLite(rows, err, fmt.Sprintf("listing revocations since %d", seq), func(sc scanner) (*Revocation, error) {
		var (
			r  Revocation
			at sql.NullString
		)
		if err := sc.Scan(&r.Seq, &r.Kind, &r.Subject, &at, &r.By, &r.Reason); err != nil {
			return nil, err
		}
		var err error
		r.At, err = parseSQLiteTime(at)
		return &r, err
	})
}

// ---- keys

// PutKey stores k, replacing the key with the same id. A zero CreatedAt
// is set to now, in k as well.
func (s *SQLite) PutKey(ctx context.Context, k *Key) error {
	if k.ID == "" || k.Use == "" || len(k.JWK) == 0 {
		return fmt.Errorf("putting key %q: id, use and jwk are required", k.ID)
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO keys (id, use, jwk, created_at, not_after) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET use = excluded.use, jwk = excluded.jwk,
			created_at = excluded.created_at, not_after = excluded.not_after`,
		k.ID, k.Use, k.JWK, sqliteTime(k.CreatedAt), sqliteTime(k.NotAfter))
	if err != nil {
		return fmt.Errorf("putting key %q: %w", k.ID, err)
	}
	s.hub.publish(Change{Kind: ChangeKey, ID: k.ID})
	return nil
}

// ListKeys returns the keys for use (every key if use is empty), oldest
// first.
func (s *SQLite) ListKeys(ctx context.Context, use string) ([]*Key, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, use, jwk, created_at, not_after FROM keys
		WHERE ? = '' OR use = ? ORDER BY created_at, id`, use, use)
	return collectSQLite(rows, err, fmt.Sprintf("listing %s keys", use), func(sc scanner) (*Key, error) {
		var (
			k                 Key
			created, notAfter sql.NullString
		)
		if err := sc.Scan(&k.ID, &k.Use, &k.JWK, &created, &notAfter); err != nil {
			return nil, err
		}
		k.JWK = cloneBytes(k.JWK)
		var err error
		if k.CreatedAt, err = parseSQLiteTime(created); err != nil {
			return nil, err
		}
		k.NotAfter, err = parseSQLiteTime(notAfter)
		return &k, err
	})
}

// DeleteKeys implements [Store].
func (s *SQLite) DeleteKeys(ctx context.Context, use string, before time.Time) (int64, error) {
	if use == "" {
		return 0, errors.New("deleting keys: a use is required")
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM keys WHERE use = ? AND not_after IS NOT NULL AND not_after < ?`,
		use, sqliteTime(before))
	if err != nil {
		return 0, fmt.Errorf("deleting %s keys: %w", use, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Publish implements [Notifier] within this process.
func (s *SQLite) Publish(ctx context.Context, c Change) error {
	s.hub.publish(c)
	return nil
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}
