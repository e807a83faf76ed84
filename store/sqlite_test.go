package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/store"
	"github.com/sekisho/sekisho/store/storetest"
)

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "sekisho.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestSQLiteMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.OpenSQLite(t.Context(), ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Open with an empty driver and DSN creates data/sekisho.db under the
// working directory, the directory private to the owner.
func TestOpenSQLiteDefaults(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	st, err := store.Open(t.Context(), "", "")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer st.Close()
	if _, ok := st.(*store.SQLite); !ok {
		t.Fatalf("Open(\"\", \"\") = %T, want *store.SQLite", st)
	}
	fi, err := os.Stat(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o700 {
		t.Errorf("data directory mode %o, want 700", m)
	}
	fi, err = os.Stat(filepath.Join(dir, store.DefaultSQLitePath))
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		t.Errorf("database file mode %o, want no group or other access", m)
	}
}

func TestOpenRejects(t *testing.T) {
	for _, tc := range []struct{ driver, dsn string }{
		{"mysql", "x"},
		{"sqlite", "file:x.db?mode=ro"},
		{"sqlite", filepath.Join(t.TempDir(), "a?b.db")},
	} {
		if st, err := store.Open(t.Context(), tc.driver, tc.dsn); err == nil {
			st.Close()
			t.Errorf("Open(%q, %q) succeeded, want error", tc.driver, tc.dsn)
		}
	}
}

// Reopening applies no migration twice and keeps the data; WAL is on.
func TestSQLiteReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db", "sekisho.db")
	ctx := t.Context()
	s1, err := store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := s1.SchemaVersion(ctx)
	if err != nil || v1 < 1 {
		t.Fatalf("SchemaVersion = %d, %v; want >= 1", v1, err)
	}
	if err := s1.CreateUser(ctx, &store.User{ID: "tanaka", Roles: []string{"staff"}}); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer s2.Close()
	v2, err := s2.SchemaVersion(ctx)
	if err != nil || v2 != v1 {
		t.Errorf("SchemaVersion after reopen = %d, %v; want %d", v2, err, v1)
	}
	if _, err := s2.GetUser(ctx, "tanaka"); err != nil {
		t.Errorf("user lost across reopen: %v", err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("no WAL file beside the database: %v", err)
	}
}

// Two handles on one file (as two processes would have) open at once,
// then write concurrently: busy handling lets every write through and an
// invitation is still consumed once.
func TestSQLiteTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sekisho.db")
	ctx := t.Context()
	var (
		handles [2]*store.SQLite
		errs    [2]error
		wg      sync.WaitGroup
	)
	for i := range handles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			handles[i], errs[i] = store.OpenSQLite(ctx, path)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer handles[i].Close()
	}
	now := time.Now()
	if err := handles[0].CreateInvitation(ctx, &store.Invitation{TokenHash: []byte("h"), UserID: "u", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		wins int
	)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := handles[i%2]
			if err := h.AddRevocation(context.Background(), &store.Revocation{Kind: store.RevokeSession, Subject: fmt.Sprint(i)}); err != nil {
				t.Errorf("AddRevocation through handle %d: %v", i%2, err)
			}
			_, err := h.ConsumeInvitation(context.Background(), []byte("h"), now)
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.Is(err, store.ErrInvitationUsed):
				t.Errorf("ConsumeInvitation through handle %d: %v", i%2, err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("invitation consumed %d times across two handles, want 1", wins)
	}
	rs, err := handles[1].RevocationsSince(ctx, 0)
	if err != nil || len(rs) != 20 {
		t.Errorf("RevocationsSince = %d, %v; want 20", len(rs), err)
	}
}
