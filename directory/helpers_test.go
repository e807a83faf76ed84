package directory_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

// seed creates users in st.
func seed(t *testing.T, st store.Store, users ...*store.User) {
	t.Helper()
	for _, u := range users {
		if u.CreatedAt.IsZero() {
			u.CreatedAt = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
		}
		if err := st.CreateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot is every user in st, one line each, for comparing states.
func snapshot(t *testing.T, st store.Store) string {
	t.Helper()
	us, err := st.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, u := range us {
		b.WriteString(u.ID + "|" + u.DisplayName + "|" + u.Department + "|" + strings.Join(u.Roles, ";"))
		if u.Disabled {
			b.WriteString("|disabled")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// records is an Auditor that keeps what it is given.
type records struct {
	mu   sync.Mutex
	list []*audit.Record
}

func (r *records) Append(rec *audit.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec)
	return nil
}

func (r *records) lines() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range r.list {
		b.WriteString(rec.Event + " " + rec.Action + " " + rec.Target + " by " + rec.User + ": " + rec.Detail + "\n")
	}
	return b.String()
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
