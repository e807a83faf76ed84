package store_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sekisho/sekisho/store"
	"github.com/sekisho/sekisho/store/storetest"
)

func TestSQLiteDirectory(t *testing.T) {
	testDirectory(t, func(t *testing.T) store.Store {
		s, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "sekisho.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestPostgresDirectory(t *testing.T) {
	testDirectory(t, func(t *testing.T) store.Store {
		st, err := store.Open(t.Context(), "postgres", storetest.PostgresDSN(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return st
	})
}

func testDirectory(t *testing.T, open func(t *testing.T) store.Store) {
	t0 := time.Date(2027, 3, 20, 1, 0, 0, 0, time.UTC)

	t.Run("batch applies all", func(t *testing.T) {
		st := open(t)
		defer st.Close()
		ctx := t.Context()
		d := st.(store.Directory)
		sato := &store.User{ID: "sato", DisplayName: "佐藤", Department: "財務課", Roles: []string{"財務"}, CreatedAt: t0}
		if err := st.CreateUser(ctx, sato); err != nil {
			t.Fatal(err)
		}
		moved := *sato
		moved.Department, moved.Roles, moved.UpdatedAt = "福祉課", []string{"福祉"}, t0.Add(time.Hour)
		apr := time.Date(2027, 3, 31, 15, 0, 0, 0, time.UTC)
		b := &store.UserBatch{
			Create:     []*store.User{{ID: "suzuki", DisplayName: "鈴木", Department: "福祉課", Roles: []string{"福祉"}}},
			Update:     []store.UserUpdate{{User: &moved, Was: sato.UpdatedAt}},
			Revoke:     []*store.Revocation{{Kind: store.RevokeUser, Subject: "sato", By: "test", Reason: "異動"}},
			AddPending: []*store.PendingUser{{UserID: "tanaka", EffectiveAt: apr, DisplayName: "田中", Department: "税務課", Roles: []string{"税務"}, Source: "a.csv:3"}},
		}
		if err := d.ApplyUsers(ctx, b); err != nil {
			t.Fatalf("ApplyUsers: %v", err)
		}
		if b.Revoke[0].Seq == 0 || b.AddPending[0].Seq == 0 {
			t.Errorf("seqs not set: revocation %d, pending %d", b.Revoke[0].Seq, b.AddPending[0].Seq)
		}
		got, err := st.GetUser(ctx, "sato")
		if err != nil || got.Department != "福祉課" || !cmp.Equal(got.Roles, []string{"福祉"}) {
			t.Errorf("sato after batch = %+v, %v", got, err)
		}
		if _, err := st.GetUser(ctx, "suzuki"); err != nil {
			t.Errorf("suzuki not created: %v", err)
		}
		revs, err := st.RevocationsSince(ctx, 0)
		if err != nil || len(revs) != 1 || revs[0].Subject != "sato" {
			t.Errorf("revocations = %v, %v", revs, err)
		}
		pend, err := d.ListPending(ctx, time.Time{})
		if err != nil || len(pend) != 1 {
			t.Fatalf("ListPending = %v, %v", pend, err)
		}
		want := &store.PendingUser{Seq: b.AddPending[0].Seq, UserID: "tanaka", EffectiveAt: apr, DisplayName: "田中",
			Department: "税務課", Roles: []string{"税務"}, Source: "a.csv:3", CreatedAt: pend[0].CreatedAt}
		if diff := cmp.Diff(want, pend[0]); diff != "" {
			t.Errorf("pending (-want +got):\n%s", diff)
		}
		if due, _ := d.ListPending(ctx, apr.Add(-time.Second)); len(due) != 0 {
			t.Errorf("ListPending before the date = %d rows, want 0", len(due))
		}
		if due, _ := d.ListPending(ctx, apr); len(due) != 1 {
			t.Errorf("ListPending at the date = %d rows, want 1", len(due))
		}

		// The same user and moment again replaces the scheduled change.
		again := &store.UserBatch{AddPending: []*store.PendingUser{{UserID: "tanaka", EffectiveAt: apr, Department: "企画課"}}}
		if err := d.ApplyUsers(ctx, again); err != nil {
			t.Fatal(err)
		}
		pend, _ = d.ListPending(ctx, time.Time{})
		if len(pend) != 1 || pend[0].Department != "企画課" {
			t.Errorf("after replacing: %+v", pend)
		}
		drop := &store.UserBatch{DropPending: []int64{pend[0].Seq}}
		if err := d.ApplyUsers(ctx, drop); err != nil {
			t.Fatal(err)
		}
		// A second replica dropping the same change loses.
		if err := d.ApplyUsers(ctx, drop); !errors.Is(err, store.ErrChanged) {
			t.Errorf("dropping twice: %v, want ErrChanged", err)
		}
	})

	t.Run("batch applies nothing on error", func(t *testing.T) {
		st := open(t)
		defer st.Close()
		ctx := t.Context()
		d := st.(store.Directory)
		if err := st.CreateUser(ctx, &store.User{ID: "sato", Department: "財務課", CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		cur, _ := st.GetUser(ctx, "sato")
		stale := *cur
		stale.Department = "福祉課"
		cur.DisplayName = "佐藤"
		cur.UpdatedAt = t0.Add(time.Minute)
		if err := st.UpdateUser(ctx, cur); err != nil {
			t.Fatal(err)
		}
		b := &store.UserBatch{
			Create:     []*store.User{{ID: "suzuki"}},
			Update:     []store.UserUpdate{{User: &stale, Was: stale.UpdatedAt}},
			Revoke:     []*store.Revocation{{Kind: store.RevokeUser, Subject: "sato"}},
			AddPending: []*store.PendingUser{{UserID: "x", EffectiveAt: t0}},
		}
		if err := d.ApplyUsers(ctx, b); !errors.Is(err, store.ErrChanged) {
			t.Fatalf("stale update: %v, want ErrChanged", err)
		}
		if _, err := st.GetUser(ctx, "suzuki"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("suzuki exists after a failed batch: %v", err)
		}
		if revs, _ := st.RevocationsSince(ctx, 0); len(revs) != 0 {
			t.Errorf("revocations after a failed batch: %v", revs)
		}
		if pend, _ := d.ListPending(ctx, time.Time{}); len(pend) != 0 {
			t.Errorf("pending after a failed batch: %v", pend)
		}
		got, _ := st.GetUser(ctx, "sato")
		if got.Department != "財務課" || got.DisplayName != "佐藤" {
			t.Errorf("sato after a failed batch = %+v", got)
		}
		dup := &store.UserBatch{Create: []*store.User{{ID: "a"}, {ID: "sato"}}}
		if err := d.ApplyUsers(ctx, dup); !errors.Is(err, store.ErrExists) {
			t.Errorf("creating an existing user: %v, want ErrExists", err)
		}
		if _, err := st.GetUser(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a exists after a failed batch: %v", err)
		}
	})
}
