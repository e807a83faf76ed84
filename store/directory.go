package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrChanged: a [UserBatch] found a user or a scheduled change different
// from what its caller had read (someone else changed it in between);
// nothing in the batch was applied.
var ErrChanged = errors.New("store: changed since it was read")

// PendingUser is a scheduled change to one user: from EffectiveAt on, the
// user should have these values. Package directory writes them for rows
// with a future 発令日 (effective date) and applies them when the moment
// comes.
type PendingUser struct {
	// Seq is assigned by the store.
	Seq         int64
	UserID      string
	EffectiveAt time.Time
	DisplayName string
	Department  string
	Roles       []string
	Disabled    bool
	// Source says where the change came from ("jinji.csv:12", an LDAP DN).
	Source    string
	CreatedBy string
	CreatedAt time.Time
}

// UserUpdate replaces a user, provided the stored user still has the
// UpdatedAt the caller read (Was).
type UserUpdate struct {
	User *User
	Was  time.Time
}

// UserBatch is a set of user changes applied all together or not at all.
type UserBatch struct {
	Create []*User
	Update []UserUpdate
	// Revoke: revocations added in the same transaction (a disabled
	// user's sessions). Their Seq is set.
	Revoke []*Revocation
	// AddPending stores scheduled changes, replacing any pending change
	// of the same user at the same EffectiveAt. Their Seq is set.
	AddPending []*PendingUser
	// DropPending removes applied scheduled changes by Seq; one that is
	// already gone fails the batch with ErrChanged (another replica
	// applied it first).
	DropPending []int64
}

// Directory is the part of the store that package directory needs beyond
// [Store]: atomic batches of user changes and scheduled changes. Both
// [SQLite] and [Postgres] implement it.
type Directory interface {
	// ApplyUsers applies b in one transaction: on any error nothing of it
	// is stored. Creating an existing user fails with ErrExists, an update
	// of a user whose UpdatedAt is not Was with ErrChanged.
	ApplyUsers(ctx context.Context, b *UserBatch) error
	// ListPending returns scheduled changes due at or before until (all
	// when until is zero), ordered by EffectiveAt then Seq.
	ListPending(ctx context.Context, until time.Time) ([]*PendingUser, error)
}

var (
	_ Directory = (*SQLite)(nil)
	_ Directory = (*Postgres)(nil)
)

// prepareBatch fills defaults (times) and checks what must be set.
func prepareBatch(b *UserBatch, now time.Time) error {
	for _, u := range b.Create {
		if u.ID == "" {
			return errors.New("creating user: empty id")
		}
		if u.CreatedAt.IsZero() {
			u.CreatedAt = now
		}
		if u.UpdatedAt.IsZero() {
			u.UpdatedAt = u.CreatedAt
		}
	}
	for _, up := range b.Update {
		if up.User == nil || up.User.ID == "" {
			return errors.New("updating user: empty id")
		}
		if up.User.UpdatedAt.IsZero() {
			up.User.UpdatedAt = now
		}
	}
	for _, r := range b.Revoke {
		if r.Kind == "" {
			return errors.New("adding revocation: empty kind")
		}
		if r.At.IsZero() {
			r.At = now
		}
	}
	for _, p := range b.AddPending {
		if p.UserID == "" || p.EffectiveAt.IsZero() {
			return errors.New("adding scheduled change: user id and effective time are required")
		}
		if p.CreatedAt.IsZero() {
			p.CreatedAt = now
		}
	}
	return nil
}

// ---- SQLite

const sqlitePendingCols = `seq, user_id, effective_at, display_name, department, roles, disabled, source, created_by, created_at`

// ApplyUsers implements [Directory] in one IMMEDIATE transaction.
func (s *SQLite) ApplyUsers(ctx context.Context, b *UserBatch) error {
	if err := prepareBatch(b, s.now()); err != nil {
		return fmt.Errorf("applying user batch: %w", err)
	}
	var seqs, pseqs []int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		seqs, pseqs = nil, nil
		for _, u := range b.Create {
			res, err := tx.ExecContext(ctx, `INSERT INTO users (`+sqliteUserCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (id) DO NOTHING`,
				u.ID, u.DisplayName, u.Department, encodeList(u.Roles), boolInt(u.Disabled), sqliteTime(u.CreatedAt), sqliteTime(u.UpdatedAt))
			if err != nil {
				return fmt.Errorf("creating user %q: %w", u.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("creating user %q: %w", u.ID, ErrExists)
			}
		}
		for _, up := range b.Update {
			u := up.User
			res, err := tx.ExecContext(ctx, `UPDATE users SET display_name = ?, department = ?, roles = ?, disabled = ?, updated_at = ?
				WHERE id = ? AND updated_at IS ?`,
				u.DisplayName, u.Department, encodeList(u.Roles), boolInt(u.Disabled), sqliteTime(u.UpdatedAt), u.ID, sqliteTime(up.Was))
			if err != nil {
				return fmt.Errorf("updating user %q: %w", u.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("updating user %q: %w", u.ID, ErrChanged)
			}
		}
		for _, r := range b.Revoke {
			var seq int64
			if err := tx.QueryRowContext(ctx, `INSERT INTO revocations (kind, subject, at, by, reason) VALUES (?, ?, ?, ?, ?)
				RETURNING seq`, r.Kind, r.Subject, sqliteTime(r.At), r.By, r.Reason).Scan(&seq); err != nil {
				return fmt.Errorf("adding %s revocation of %q: %w", r.Kind, r.Subject, err)
			}
			seqs = append(seqs, seq)
		}
		for _, p := range b.AddPending {
			var seq int64
			if err := tx.QueryRowContext(ctx, `INSERT INTO pending_users (user_id, effective_at, display_name, department, roles, disabled, source, created_by, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (user_id, effective_at) DO UPDATE SET display_name = excluded.display_name,
					department = excluded.department, roles = excluded.roles, disabled = excluded.disabled,
					source = excluded.source, created_by = excluded.created_by, created_at = excluded.created_at
				RETURNING seq`,
				p.UserID, sqliteTime(p.EffectiveAt), p.DisplayName, p.Department, encodeList(p.Roles), boolInt(p.Disabled),
				p.Source, p.CreatedBy, sqliteTime(p.CreatedAt)).Scan(&seq); err != nil {
				return fmt.Errorf("scheduling change of user %q: %w", p.UserID, err)
			}
			pseqs = append(pseqs, seq)
		}
		for _, seq := range b.DropPending {
			res, err := tx.ExecContext(ctx, `DELETE FROM pending_users WHERE seq = ?`, seq)
			if err != nil {
				return fmt.Errorf("removing scheduled change #%d: %w", seq, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("removing scheduled change #%d: %w", seq, ErrChanged)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("applying user batch: %w", err)
	}
	for i, seq := range seqs {
		b.Revoke[i].Seq = seq
	}
	for i, seq := range pseqs {
		b.AddPending[i].Seq = seq
	}
	for _, u := range b.Create {
		s.hub.publish(Change{Kind: ChangeUser, ID: u.ID})
	}
	for _, up := range b.Update {
		s.hub.publish(Change{Kind: ChangeUser, ID: up.User.ID})
	}
	for _, seq := range seqs {
		s.hub.publish(Change{Kind: ChangeRevocation, Seq: seq})
	}
	return nil
}

func scanSQLitePending(sc scanner) (*PendingUser, error) {
	var (
		p                  PendingUser
		roles              string
		disabled           int
		effective, created sql.NullString
	)
	if err := sc.Scan(&p.Seq, &p.UserID, &effective, &p.DisplayName, &p.Department, &roles, &disabled,
		&p.Source, &p.CreatedBy, &created); err != nil {
		return nil, err
	}
	var err error
	p.Disabled = disabled != 0
	if p.Roles, err = decodeList(roles); err != nil {
		return nil, err
	}
	if p.EffectiveAt, err = parseSQLiteTime(effective); err != nil {
		return nil, err
	}
	if p.CreatedAt, err = parseSQLiteTime(created); err != nil {
		return nil, err
	}
	return &p, nil
}

// ListPending implements [Directory].
func (s *SQLite) ListPending(ctx context.Context, until time.Time) ([]*PendingUser, error) {
	q := `SELECT ` + sqlitePendingCols + ` FROM pending_users`
	var args []any
	if !until.IsZero() {
		q += ` WHERE effective_at <= ?`
		args = append(args, sqliteTime(until))
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY effective_at, seq`, args...)
	return collectSQLite(rows, err, "listing scheduled user changes", scanSQLitePending)
}

// ---- PostgreSQL

// ApplyUsers implements [Directory] in one transaction; changes are
// announced to other replicas when it commits.
func (p *Postgres) ApplyUsers(ctx context.Context, b *UserBatch) error {
	if err := prepareBatch(b, p.now()); err != nil {
		return fmt.Errorf("applying user batch: %w", err)
	}
	var seqs, pseqs []int64
	err := p.withTx(ctx, func(tx pgx.Tx) error {
		seqs, pseqs = nil, nil
		for _, u := range b.Create {
			tag, err := tx.Exec(ctx, `INSERT INTO users (`+sqliteUserCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (id) DO NOTHING`,
				u.ID, u.DisplayName, u.Department, encodeList(u.Roles), u.Disabled, pgTime(u.CreatedAt), pgTime(u.UpdatedAt))
			if err != nil {
				return fmt.Errorf("creating user %q: %w", u.ID, err)
			}
			if tag.RowsAffected() == 0 {
				return fmt.Errorf("creating user %q: %w", u.ID, ErrExists)
			}
			if err := p.notify(ctx, tx, Change{Kind: ChangeUser, ID: u.ID}); err != nil {
				return err
			}
		}
		for _, up := range b.Update {
			u := up.User
			tag, err := tx.Exec(ctx, `UPDATE users SET display_name = $1, department = $2, roles = $3, disabled = $4, updated_at = $5
				WHERE id = $6 AND updated_at IS NOT DISTINCT FROM $7`,
				u.DisplayName, u.Department, encodeList(u.Roles), u.Disabled, pgTime(u.UpdatedAt), u.ID, pgTime(up.Was))
			if err != nil {
				return fmt.Errorf("updating user %q: %w", u.ID, err)
			}
			if tag.RowsAffected() == 0 {
				return fmt.Errorf("updating user %q: %w", u.ID, ErrChanged)
			}
			if err := p.notify(ctx, tx, Change{Kind: ChangeUser, ID: u.ID}); err != nil {
				return err
			}
		}
		if len(b.Revoke) > 0 {
			// The same lock as AddRevocation: Seq order is commit order.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('sekisho.revocations.' || current_schema()))`); err != nil {
				return err
			}
		}
		for _, r := range b.Revoke {
			var seq int64
			if err := tx.QueryRow(ctx, `INSERT INTO revocations (kind, subject, at, by, reason) VALUES ($1, $2, $3, $4, $5)
				RETURNING seq`, r.Kind, r.Subject, r.At.UTC(), r.By, r.Reason).Scan(&seq); err != nil {
				return fmt.Errorf("adding %s revocation of %q: %w", r.Kind, r.Subject, err)
			}
			seqs = append(seqs, seq)
			if err := p.notify(ctx, tx, Change{Kind: ChangeRevocation, Seq: seq}); err != nil {
				return err
			}
		}
		for _, pu := range b.AddPending {
			var seq int64
			if err := tx.QueryRow(ctx, `INSERT INTO pending_users (user_id, effective_at, display_name, department, roles, disabled, source, created_by, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (user_id, effective_at) DO UPDATE SET display_name = excluded.display_name,
					department = excluded.department, roles = excluded.roles, disabled = excluded.disabled,
					source = excluded.source, created_by = excluded.created_by, created_at = excluded.created_at
				RETURNING seq`,
				pu.UserID, pu.EffectiveAt.UTC(), pu.DisplayName, pu.Department, encodeList(pu.Roles), pu.Disabled,
				pu.Source, pu.CreatedBy, pgTime(pu.CreatedAt)).Scan(&seq); err != nil {
				return fmt.Errorf("scheduling change of user %q: %w", pu.UserID, err)
			}
			pseqs = append(pseqs, seq)
		}
		for _, seq := range b.DropPending {
			tag, err := tx.Exec(ctx, `DELETE FROM pending_users WHERE seq = $1`, seq)
			if err != nil {
				return fmt.Errorf("removing scheduled change #%d: %w", seq, err)
			}
			if tag.RowsAffected() == 0 {
				return fmt.Errorf("removing scheduled change #%d: %w", seq, ErrChanged)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("applying user batch: %w", err)
	}
	for i, seq := range seqs {
		b.Revoke[i].Seq = seq
	}
	for i, seq := range pseqs {
		b.AddPending[i].Seq = seq
	}
	return nil
}

func scanPGPending(row pgx.Row) (*PendingUser, error) {
	var (
		pu                 PendingUser
		roles              string
		effective, created *time.Time
	)
	if err := row.Scan(&pu.Seq, &pu.UserID, &effective, &pu.DisplayName, &pu.Department, &roles, &pu.Disabled,
		&pu.Source, &pu.CreatedBy, &created); err != nil {
		return nil, err
	}
	var err error
	if pu.Roles, err = decodeList(roles); err != nil {
		return nil, err
	}
	pu.EffectiveAt, pu.CreatedAt = fromPG(effective), fromPG(created)
	return &pu, nil
}

// ListPending implements [Directory].
func (p *Postgres) ListPending(ctx context.Context, until time.Time) ([]*PendingUser, error) {
	q := `SELECT ` + sqlitePendingCols + ` FROM pending_users`
	var args []any
	if !until.IsZero() {
		q += ` WHERE effective_at <= $1`
		args = append(args, until.UTC())
	}
	out, err := pgList(ctx, p.pool, scanPGPending, q+` ORDER BY effective_at, seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("listing scheduled user changes: %w", err)
	}
	return out, nil
}
