package directory_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/directory"
	"github.com/sekisho/sekisho/store"
)

func TestSchedulerAppliesOnTheDay(t *testing.T) {
	st := staff(t)
	ctx := t.Context()
	clock := &fakeClock{t: march}
	text := jaHeader +
		"sato,佐藤 花子,福祉課,福祉,有効,2027-04-01\n" +
		"watanabe,渡辺 恵,福祉課,福祉,有効,2027-04-01\n" +
		"takahashi,高橋 健,税務課,税務,退職,2027-04-01\n" +
		"suzuki,鈴木 一郎,企画課,管理者,有効,2027-04-02\n"
	cs, err := directory.Plan(ctx, st, parse(t, text, false), directory.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Scheduled) != 4 || len(cs.Changes) != 0 {
		t.Fatalf("plan:\n%s", render(t, cs))
	}
	if _, err := directory.Apply(ctx, st, cs, directory.WithClock(clock.Now)); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, st)
	rec := &records{}
	s, err := directory.NewScheduler(st, directory.WithClock(clock.Now), directory.WithAudit(rec))
	if err != nil {
		t.Fatal(err)
	}

	// One second before the day begins in Tokyo: nothing.
	clock.Set(april1.Add(-time.Second))
	res, err := s.RunDue(ctx)
	if err != nil || res.Scheduled != 0 || snapshot(t, st) != before {
		t.Fatalf("before the day: %+v, %v", res, err)
	}
	// At 00:00 JST (15:00 UTC the day before) the three changes of April 1st.
	clock.Set(april1)
	res, err = s.RunDue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Scheduled != 3 || res.Added != 1 || res.Changed != 1 || res.Disabled != 1 || len(res.Revoked) != 1 {
		t.Errorf("on April 1st: %+v", res)
	}
	u, _ := st.GetUser(ctx, "sato")
	if u.Department != "福祉課" || strings.Join(u.Roles, ",") != "福祉" {
		t.Errorf("sato on April 1st: %+v", u)
	}
	if u, _ := st.GetUser(ctx, "suzuki"); u.Department != "福祉課" {
		t.Errorf("suzuki moved a day early: %+v", u)
	}
	want := "admin user_change sato by directory:scheduler: department: 財務課 → 福祉課; roles: 財務 → 福祉; source: scheduled #1 jinji.csv:2\n" +
		"admin user_disable takahashi by directory:scheduler: status: 有効 active → 無効 disabled; source: scheduled #3 jinji.csv:4\n" +
		"admin user_add watanabe by directory:scheduler: display_name: (なし none) → 渡辺 恵; department: (なし none) → 福祉課; roles: (なし none) → 福祉; source: scheduled #4 jinji.csv:3\n"
	if got := rec.lines(); got != want {
		t.Errorf("audit records:\n%s\nwant\n%s", got, want)
	}
	// Running again the same day finds nothing left.
	if res, err := s.RunDue(ctx); err != nil || res.Scheduled != 0 {
		t.Errorf("second run: %+v, %v", res, err)
	}
	clock.Set(april1.Add(24 * time.Hour))
	if res, err := s.RunDue(ctx); err != nil || res.Changed != 1 {
		t.Errorf("April 2nd: %+v, %v", res, err)
	}
	if pend, _ := st.(store.Directory).ListPending(ctx, time.Time{}); len(pend) != 0 {
		t.Errorf("left pending: %+v", pend)
	}
}

// Two gateways sharing one database: each due change is applied and
// audited once.
func TestSchedulerReplicasApplyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	ctx := t.Context()
	open := func() store.Store {
		st, err := store.Open(ctx, "sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	st1, st2 := open(), open()
	seed(t, st1, &store.User{ID: "sato", DisplayName: "佐藤", Department: "財務課", Roles: []string{"財務"}})
	clock := &fakeClock{t: march}
	cs, err := directory.Plan(ctx, st1, parse(t, jaHeader+"sato,佐藤,福祉課,福祉,有効,2027-04-01\n", false), directory.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := directory.Apply(ctx, st1, cs, directory.WithClock(clock.Now)); err != nil {
		t.Fatal(err)
	}
	clock.Set(april1.Add(time.Minute))
	rec := &records{}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, st := range []store.Store{st1, st2} {
		s, err := directory.NewScheduler(st, directory.WithClock(clock.Now), directory.WithAudit(rec))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.RunDue(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, store.ErrChanged) {
			t.Errorf("RunDue: %v", err)
		}
	}
	if n := strings.Count(rec.lines(), "user_change sato"); n != 1 {
		t.Errorf("%d audit records for one scheduled change:\n%s", n, rec.lines())
	}
	if u, _ := st2.GetUser(ctx, "sato"); u.Department != "福祉課" {
		t.Errorf("sato = %+v", u)
	}
}

// RunScheduler applies due changes at start and on each tick of
// directory.check_interval, and returns when its context ends.
func TestSchedulerRun(t *testing.T) {
	st := staff(t)
	clock := &fakeClock{t: march}
	cs, err := directory.Plan(t.Context(), st, parse(t, jaHeader+"sato,佐藤 花子,福祉課,福祉,有効,2027-04-01\n", false), directory.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := directory.Apply(t.Context(), st, cs, directory.WithClock(clock.Now)); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Directory: config.Directory{CheckInterval: 10 * time.Millisecond}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- directory.RunScheduler(ctx, cfg, st, directory.WithClock(clock.Now)) }()
	time.Sleep(30 * time.Millisecond)
	if u, _ := st.GetUser(t.Context(), "sato"); u.Department != "財務課" {
		t.Fatalf("applied before the day: %+v", u)
	}
	clock.Set(april1)
	deadline := time.Now().Add(5 * time.Second)
	for {
		u, _ := st.GetUser(t.Context(), "sato")
		if u.Department == "福祉課" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scheduler did not apply the change")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}
