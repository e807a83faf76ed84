package store

import (
	"context"
	"fmt"
	"time"
)

// Pruner is implemented by stores that can delete records nobody needs
// any more. A gateway calls it now and then (say hourly); both stores
// implement it.
type Pruner interface {
	// Prune deletes session records whose ExpiresAt is before before and
	// invitations, used or not, whose ExpiresAt is before before, and
	// consumed WebAuthn challenges that expired before before. It
	// returns how many records it deleted. Revocations and keys are kept.
	Prune(ctx context.Context, before time.Time) (int64, error)
}

var (
	_ Pruner = (*SQLite)(nil)
	_ Pruner = (*Postgres)(nil)
)

// Prune implements [Pruner].
func (s *SQLite) Prune(ctx context.Context, before time.Time) (int64, error) {
	b := sqliteTime(before)
	res1, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at IS NOT NULL AND expires_at < ?`, b)
	if err != nil {
		return 0, fmt.Errorf("pruning sessions: %w", err)
	}
	res2, err := s.w.ExecContext(ctx, `DELETE FROM invitations WHERE expires_at < ?`, b)
	if err != nil {
		return 0, fmt.Errorf("pruning invitations: %w", err)
	}
	res3, err := s.w.ExecContext(ctx, `DELETE FROM used_challenges WHERE expires_at < ?`, b)
	if err != nil {
		return 0, fmt.Errorf("pruning used challenges: %w", err)
	}
	n1, _ := res1.RowsAffected()
	n2, _ := res2.RowsAffected()
	n3, _ := res3.RowsAffected()
	return n1 + n2 + n3, nil
}

// Prune implements [Pruner].
func (p *Postgres) Prune(ctx context.Context, before time.Time) (int64, error) {
	t1, err := p.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1`, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("pruning sessions: %w", err)
	}
	t2, err := p.pool.Exec(ctx, `DELETE FROM invitations WHERE expires_at < $1`, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("pruning invitations: %w", err)
	}
	t3, err := p.pool.Exec(ctx, `DELETE FROM used_challenges WHERE expires_at < $1`, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("pruning used challenges: %w", err)
	}
	return t1.RowsAffected() + t2.RowsAffected() + t3.RowsAffected(), nil
}
