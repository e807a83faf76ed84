package directory_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sekisho/sekisho/directory"
	"github.com/sekisho/sekisho/store"
	"github.com/sekisho/sekisho/store/storetest"
)

// The same import on PostgreSQL: a stale plan applies nothing, a fresh
// one applies everything, and the scheduler consumes the pending change.
func TestPostgresApplyAndSchedule(t *testing.T) {
	st, err := store.Open(t.Context(), "postgres", storetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	staffIn(t, st)
	ctx := t.Context()
	clock := &fakeClock{t: march}
	cs, err := directory.Plan(ctx, st, parse(t, april, true), directory.WithClock(clock.Now), directory.WithKeep("admin"))
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := st.GetUser(ctx, "takahashi")
	tk.UpdatedAt = march.Add(time.Minute)
	if err := st.UpdateUser(ctx, tk); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, st)
	if _, err := directory.Apply(ctx, st, cs, directory.WithClock(clock.Now)); !errors.Is(err, store.ErrChanged) {
		t.Fatalf("stale Apply = %v, want ErrChanged", err)
	}
	if snapshot(t, st) != before {
		t.Fatal("a failed apply changed the store")
	}
	if revs, _ := st.RevocationsSince(ctx, 0); len(revs) != 0 {
		t.Fatalf("revocations after a failed apply: %v", revs)
	}
	cs, err = directory.Plan(ctx, st, parse(t, april, true), directory.WithClock(clock.Now), directory.WithKeep("admin"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &records{}
	res, err := directory.Apply(ctx, st, cs, directory.WithClock(clock.Now), directory.WithAudit(rec))
	if err != nil || res.Added != 1 || res.Disabled != 2 || res.Scheduled != 1 || len(res.Revoked) != 2 {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	want := "admin|情報政策課 管理者|情報政策課|管理者\nito|伊藤 次郎|税務課|税務|disabled\nsato|佐藤 花子|福祉課|福祉\n" +
		"suzuki|鈴木 一郎|福祉課|福祉|disabled\ntakahashi|髙橋 健|税務課|税務\ntanaka|田中 三郎|税務課|税務\nyamada|山田 太郎|財務課|管理者;財務\n"
	if got := snapshot(t, st); got != want {
		t.Errorf("users:\n%s\nwant\n%s", got, want)
	}
	s, err := directory.NewScheduler(st, directory.WithClock(clock.Now), directory.WithAudit(rec))
	if err != nil {
		t.Fatal(err)
	}
	clock.Set(april1)
	if res, err := s.RunDue(ctx); err != nil || res.Added != 1 {
		t.Fatalf("RunDue = %+v, %v", res, err)
	}
	if u, err := st.GetUser(ctx, "watanabe"); err != nil || u.Department != "福祉課" {
		t.Errorf("watanabe = %+v, %v", u, err)
	}
}
