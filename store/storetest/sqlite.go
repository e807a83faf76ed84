package storetest

import (
	"path/filepath"
	"testing"

	"github.com/sekisho/sekisho/store"
)

// SQLite opens a new, empty SQLite store in t's temporary directory and
// closes it when the test ends.
func SQLite(t testing.TB) store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite", filepath.Join(t.TempDir(), "sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
