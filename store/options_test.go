package store_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho/store"
)

// Times the caller leaves zero come from WithClock's clock, in UTC.
func TestWithClock(t *testing.T) {
	jst := time.FixedZone("JST", 9*60*60)
	fixed := time.Date(2026, 4, 1, 9, 0, 0, 0, jst)
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "s.db"), store.WithClock(func() time.Time { return fixed }))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	if err := st.CreateUser(ctx, &store.User{ID: "u"}); err != nil {
		t.Fatal(err)
	}
	r := &store.Revocation{Kind: store.RevokeAll}
	if err := st.AddRevocation(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := st.PutKey(ctx, &store.Key{ID: "k", Use: "session", JWK: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	u, err := st.GetUser(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := st.RevocationsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := st.ListKeys(ctx, "session")
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]time.Time{
		"User.CreatedAt": u.CreatedAt, "User.UpdatedAt": u.UpdatedAt, "Revocation.At": rs[0].At, "Key.CreatedAt": ks[0].CreatedAt,
	} {
		if !got.Equal(fixed) || got.Location() != time.UTC {
			t.Errorf("%s = %v, want the clock's %v in UTC", name, got, fixed)
		}
	}
	if !r.At.Equal(fixed) {
		t.Errorf("AddRevocation set r.At = %v, want %v", r.At, fixed)
	}
}
