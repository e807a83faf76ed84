package session

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/store"
)

// fakeClock is a settable clock for lifetimes.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testConfig() *config.Config {
	cfg := &config.Config{}
	cfg.WebAuthn.RPID = "gw.example.lg.jp"
	cfg.Session.Lifetime = 10 * time.Hour
	cfg.Session.Idle = 30 * time.Minute
	cfg.Session.KeyRotation = 24 * time.Hour
	cfg.Session.AssertionLifetime = 60 * time.Second
	return cfg
}

// openStore opens a real SQLite store at path (in t.TempDir() unless given).
func openStore(t testing.TB, path string) store.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "sekisho.db")
	}
	st, err := store.Open(context.Background(), "sqlite", path)
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newManager builds a Manager over a fresh store with a fake clock.
func newManager(t testing.TB, cfg *config.Config, clock *fakeClock, st store.Store) *Manager {
	t.Helper()
	if cfg == nil {
		cfg = testConfig()
	}
	if st == nil {
		st = openStore(t, "")
	}
	opts := []Option{WithLogger(quietLogger())}
	if clock != nil {
		opts = append(opts, WithClock(clock.Now))
	}
	m, err := New(cfg, st, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func issue(t testing.TB, m *Manager, c *Claims) string {
	t.Helper()
	tok, err := m.Issue(context.Background(), c)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok
}
