package session

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/sekisho/sekisho/store"
)

// revset is the revocation list in memory, immutable once published; a
// change builds a new one (revocations are rare, verifications are not).
type revset struct {
	sessions map[string]time.Time // session id → At
	users    map[string]time.Time // user id → latest At
	devices  map[string]time.Time // device id → latest At
	all      time.Time            // latest revoke-all
}

// revoked reports whether a revocation matches c: its session id, or its
// user, device or everyone with At at or after the session's IssuedAt.
// IssuedAt has whole seconds, so a session begun in the same second as a
// revocation that names it is ended too (fail closed).
func (r *revset) revoked(c *Claims) bool {
	if _, ok := r.sessions[c.ID]; ok {
		return true
	}
	if at, ok := r.users[c.User]; ok && !at.Before(c.IssuedAt) {
		return true
	}
	if c.Device != "" {
		if at, ok := r.devices[c.Device]; ok && !at.Before(c.IssuedAt) {
			return true
		}
	}
	return !r.all.IsZero() && !r.all.Before(c.IssuedAt)
}

// pollState is the revocation cursor. With a PostgreSQL sequence a
// revocation may commit after one with a higher Seq, so the cursor stays
// behind anything seen in the last settleWindow and recent rows are read
// again (applying one twice is harmless).
type pollState struct {
	stable int64               // query RevocationsSince(stable)
	seen   map[int64]time.Time // seq → when first applied, for seq > stable
}

const settleWindow = 5 * time.Second

// Revoke stores r (setting r.Seq) and applies it here at once; other
// replicas apply it on their next poll. A zero r.At means now.
func (m *Manager) Revoke(ctx context.Context, r *store.Revocation) error {
	if r == nil {
		return errors.New("session: revoke: no revocation")
	}
	switch r.Kind {
	case store.RevokeSession, store.RevokeUser, store.RevokeDevice:
		if r.Subject == "" {
			return fmt.Errorf("session: revoke %s: subject missing", r.Kind)
		}
	case store.RevokeAll:
		if r.Subject != "" {
			return fmt.Errorf("session: revoke all: subject %q given", r.Subject)
		}
	default:
		return fmt.Errorf("session: revoke: kind %q unknown (want session, user, device or all)", r.Kind)
	}
	if r.At.IsZero() {
		r.At = m.now()
	}
	if err := m.st.AddRevocation(ctx, r); err != nil {
		return fmt.Errorf("session: storing revocation of %s %q: %w", r.Kind, r.Subject, err)
	}
	m.revMu.Lock()
	m.apply([]*store.Revocation{r}, false)
	m.revMu.Unlock()
	m.log.Info("session: revoked", "kind", r.Kind, "subject", r.Subject, "seq", r.Seq, "by", r.By, "reason", r.Reason)
	return nil
}

// syncRevocations applies revocations the store has and we have not seen.
// report logs each with its lag (not on the first load at start).
func (m *Manager) syncRevocations(ctx context.Context, report bool) error {
	m.revMu.Lock()
	defer m.revMu.Unlock()
	revs, err := m.st.RevocationsSince(ctx, m.poll.stable)
	if err != nil {
		return fmt.Errorf("session: reading revocations after %d: %w", m.poll.stable, err)
	}
	m.apply(revs, report)
	return nil
}

// apply adds the revocations not seen yet and advances the cursor. It
// must be called with revMu held.
func (m *Manager) apply(revs []*store.Revocation, report bool) {
	if m.poll.seen == nil {
		m.poll.seen = map[int64]time.Time{}
	}
	wall := time.Now()
	var fresh []*store.Revocation
	for _, r := range revs {
		if r.Seq <= m.poll.stable {
			continue
		}
		if _, ok := m.poll.seen[r.Seq]; ok {
			continue
		}
		m.poll.seen[r.Seq] = wall
		fresh = append(fresh, r)
	}
	for seq, at := range m.poll.seen {
		if wall.Sub(at) >= settleWindow && seq > m.poll.stable {
			m.poll.stable = seq
		}
	}
	maps.DeleteFunc(m.poll.seen, func(seq int64, _ time.Time) bool { return seq <= m.poll.stable })
	if len(fresh) == 0 {
		return
	}

	now := m.now()
	old := m.revs.Load()
	next := &revset{
		sessions: maps.Clone(old.sessions),
		users:    maps.Clone(old.users),
		devices:  maps.Clone(old.devices),
		all:      old.all,
	}
	for _, r := range fresh {
		switch r.Kind {
		case store.RevokeSession:
			next.sessions[r.Subject] = r.At
		case store.RevokeUser:
			next.users[r.Subject] = later(next.users[r.Subject], r.At)
		case store.RevokeDevice:
			next.devices[r.Subject] = later(next.devices[r.Subject], r.At)
		case store.RevokeAll:
			next.all = later(next.all, r.At)
		default:
			m.log.Error("session: ignoring revocation of unknown kind", "kind", r.Kind, "seq", r.Seq)
			continue
		}
		m.metrics.revocations.Inc()
		if report {
			lag := now.Sub(r.At)
			m.metrics.revocationLag.Observe(lag.Seconds())
			m.log.Info("session: revocation applied", "kind", r.Kind, "subject", r.Subject, "seq", r.Seq, "lag", lag)
		}
	}
	// A revocation older than the session lifetime can match no live
	// session: every session it could name has expired.
	horizon := now.Add(-m.lifetime - parseSkew)
	for _, mp := range []map[string]time.Time{next.sessions, next.users, next.devices} {
		maps.DeleteFunc(mp, func(_ string, at time.Time) bool { return at.Before(horizon) })
	}
	m.revs.Store(next)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// subscribe returns the store's change feed if it offers one
// ([store.Notifier]; PostgreSQL LISTEN/NOTIFY, or within one process);
// otherwise nil, and polling alone is used.
func (m *Manager) subscribe(ctx context.Context) <-chan store.Change {
	n, ok := m.st.(store.Notifier)
	if !ok {
		return nil
	}
	ch, err := n.Subscribe(ctx)
	if err != nil {
		m.log.Warn("session: store notifications unavailable, polling only", "err", err)
		return nil
	}
	return ch
}
