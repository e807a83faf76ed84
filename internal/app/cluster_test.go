package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho/store"
)

// withStaleUsers serves the last user read while the store fails, for
// at most the grace period, and never serves a user the store says is gone.
func TestStaleUsersWhileTheStoreFails(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, &store.User{ID: "sato", Roles: []string{"住民記録"}}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := withStaleUsers(st, time.Hour, clock, slog.New(slog.NewTextHandler(io.Discard, nil)))

	u, err := s.GetUser(ctx, "sato")
	if err != nil || u.Roles[0] != "住民記録" {
		t.Fatalf("GetUser = %+v, %v", u, err)
	}
	u.Roles[0] = "changed by the caller"
	if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v, want ErrNotFound", err)
	}

	st.Close() // the database goes away
	now = now.Add(59 * time.Minute)
	u, err = s.GetUser(ctx, "sato")
	if err != nil || u.ID != "sato" || u.Roles[0] != "住民記録" {
		t.Fatalf("during the outage: %+v, %v; want sato as last read (unaffected by the caller's edit)", u, err)
	}
	if _, err := s.GetUser(ctx, "nobody"); err == nil {
		t.Fatal("a user never read was served during the outage")
	}
	now = now.Add(2 * time.Minute) // past the grace period
	if _, err := s.GetUser(ctx, "sato"); err == nil {
		t.Fatal("a user read more than the grace period ago was served")
	}
}

// pruneOnce deletes what expired more than a day ago and keeps the rest.
func TestPruneOnce(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	a := &App{Store: st, now: func() time.Time { return now }, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, s := range []*store.Session{
		{ID: "old", UserID: "u", CreatedAt: now.Add(-72 * time.Hour), ExpiresAt: now.Add(-48 * time.Hour)},
		{ID: "recent", UserID: "u", CreatedAt: now.Add(-12 * time.Hour), ExpiresAt: now.Add(-2 * time.Hour)},
		{ID: "live", UserID: "u", CreatedAt: now, ExpiresAt: now.Add(10 * time.Hour)},
	} {
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.ConsumeChallenge(ctx, []byte("old"), now.Add(-30*time.Hour)); err != nil {
		t.Fatal(err)
	}
	a.pruneOnce(ctx, st.(store.Pruner))
	for id, want := range map[string]bool{"old": false, "recent": true, "live": true} {
		_, err := st.GetSession(ctx, id)
		if got := err == nil; got != want {
			t.Errorf("session %s kept = %v, want %v (%v)", id, got, want, err)
		}
	}
	if err := st.ConsumeChallenge(ctx, []byte("old"), now.Add(-30*time.Hour)); err != nil {
		t.Errorf("the old challenge was not pruned: %v", err)
	}
}
