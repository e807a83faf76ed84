package directory_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/directory"
	"github.com/sekisho/sekisho/store"
	"github.com/sekisho/sekisho/store/storetest"
)

var (
	jst    = time.FixedZone("JST", 9*3600)
	march  = time.Date(2027, 3, 25, 10, 0, 0, 0, jst)
	april1 = time.Date(2027, 4, 1, 0, 0, 0, 0, jst)
)

// staff is the store before the April transfers.
func staff(t *testing.T) store.Store {
	return staffIn(t, storetest.SQLite(t))
}

func staffIn(t *testing.T, st store.Store) store.Store {
	seed(t, st,
		&store.User{ID: "admin", DisplayName: "情報政策課 管理者", Department: "情報政策課", Roles: []string{"管理者"}},
		&store.User{ID: "sato", DisplayName: "佐藤 花子", Department: "財務課", Roles: []string{"財務"}},
		&store.User{ID: "suzuki", DisplayName: "鈴木 一郎", Department: "福祉課", Roles: []string{"福祉"}},
		&store.User{ID: "takahashi", DisplayName: "高橋 健", Department: "税務課", Roles: []string{"税務"}},
		&store.User{ID: "tanaka", DisplayName: "田中 三郎", Department: "財務課", Roles: []string{"財務"}, Disabled: true},
		&store.User{ID: "ito", DisplayName: "伊藤 次郎", Department: "税務課", Roles: []string{"税務"}},
	)
	return st
}

// april is the personnel system's list: sato moves to 福祉課, takahashi
// gets a new name, tanaka returns, yamada joins, ito retires (status) and
// suzuki is not listed; watanabe moves on April 1st.
const april = jaHeader +
	"sato,佐藤 花子,福祉課,福祉,有効,\n" +
	"takahashi,髙橋 健,税務課,税務,有効,\n" +
	"tanaka,田中 三郎,税務課,税務,有効,\n" +
	"yamada,山田 太郎,財務課,財務;管理者,有効,\n" +
	"ito,伊藤 次郎,税務課,税務,退職,\n" +
	"watanabe,渡辺 恵,福祉課,福祉,有効,2027-04-01\n"

func parse(t *testing.T, text string, full bool) *directory.Source {
	t.Helper()
	src, err := directory.ParseCSV("jinji.csv", []byte(text), directory.CSVOptions{Roles: testRoles, Location: jst})
	if err != nil {
		t.Fatalf("ParseCSV: %v", err)
	}
	src.Full = full
	return src
}

func render(t *testing.T, cs *directory.ChangeSet) string {
	var b strings.Builder
	if err := cs.Render(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestPlanGolden(t *testing.T) {
	for _, tt := range []struct {
		golden string
		full   bool
	}{{"plan_partial.golden", false}, {"plan_full.golden", true}} {
		t.Run(tt.golden, func(t *testing.T) {
			st := staff(t)
			before := snapshot(t, st)
			cs, err := directory.Plan(t.Context(), st, parse(t, april, tt.full), directory.WithClock(func() time.Time { return march }))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, render(t, cs))
			if after := snapshot(t, st); after != before {
				t.Errorf("Plan changed the store:\n%s", after)
			}
		})
	}
}

func TestApplyFull(t *testing.T) {
	st := staff(t)
	ctx := t.Context()
	rec := &records{}
	clock := func() time.Time { return march }
	cs, err := directory.Plan(ctx, st, parse(t, april, true), directory.WithClock(clock), directory.WithKeep("admin"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := directory.Apply(ctx, st, cs, directory.WithClock(clock), directory.WithAudit(rec), directory.WithOperator("cli:test"))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var b strings.Builder
	res.Render(&b)
	golden(t, "apply_full.golden", b.String()+"\n"+snapshot(t, st)+"\n"+rec.lines())

	// Disabled users' sessions end on every gateway: one user revocation each.
	revs, err := st.RevocationsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var revoked []string
	for _, r := range revs {
		if r.Kind != store.RevokeUser || r.By != "cli:test" {
			t.Errorf("revocation %+v", r)
		}
		revoked = append(revoked, r.Subject)
	}
	if got := strings.Join(revoked, ","); got != "ito,suzuki" {
		t.Errorf("revoked %s, want ito,suzuki", got)
	}
	pend, err := st.(store.Directory).ListPending(ctx, time.Time{})
	if err != nil || len(pend) != 1 || pend[0].UserID != "watanabe" || !pend[0].EffectiveAt.Equal(april1) {
		t.Errorf("pending = %+v, %v", pend, err)
	}

	// The same file again changes nothing but re-schedules watanabe.
	cs, err = directory.Plan(ctx, st, parse(t, april, true), directory.WithClock(clock), directory.WithKeep("admin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Changes) != 0 || len(cs.Scheduled) != 1 || cs.Unchanged != 5 {
		t.Errorf("second plan:\n%s", render(t, cs))
	}
}

// A bad row anywhere leaves the store exactly as it was: ParseCSV refuses
// the file, so there is nothing to plan or apply.
func TestBadRowAppliesNothing(t *testing.T) {
	st := staff(t)
	before := snapshot(t, st)
	text := april + "kobayashi,小林,財務課,経理,有効,\n"
	_, err := directory.ParseCSV("jinji.csv", []byte(text), directory.CSVOptions{Roles: testRoles})
	var re *directory.RowErrors
	if !errors.As(err, &re) || len(re.List) != 1 || re.List[0].Line != 8 {
		t.Fatalf("ParseCSV error = %v, want one error on line 8", err)
	}
	if after := snapshot(t, st); after != before {
		t.Errorf("store changed:\n%s", after)
	}
}

// A failure inside the store transaction (a user changed by someone else
// between plan and apply) applies nothing of the batch either.
func TestApplyIsAtomic(t *testing.T) {
	st := staff(t)
	ctx := t.Context()
	clock := func() time.Time { return march }
	cs, err := directory.Plan(ctx, st, parse(t, april, true), directory.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	// An administrator edits takahashi meanwhile; the batch has already
	// made earlier changes (ito, sato) by the time it reaches takahashi.
	tk, _ := st.GetUser(ctx, "takahashi")
	tk.Roles = []string{"税務", "管理者"}
	tk.UpdatedAt = march.Add(time.Minute)
	if err := st.UpdateUser(ctx, tk); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, st)
	rec := &records{}
	_, err = directory.Apply(ctx, st, cs, directory.WithClock(clock), directory.WithAudit(rec))
	if !errors.Is(err, store.ErrChanged) {
		t.Fatalf("Apply = %v, want ErrChanged", err)
	}
	if after := snapshot(t, st); after != before {
		t.Errorf("store changed by a failed apply:\nbefore\n%s\nafter\n%s", before, after)
	}
	if revs, _ := st.RevocationsSince(ctx, 0); len(revs) != 0 {
		t.Errorf("revocations after a failed apply: %v", revs)
	}
	if pend, _ := st.(store.Directory).ListPending(ctx, time.Time{}); len(pend) != 0 {
		t.Errorf("scheduled changes after a failed apply: %v", pend)
	}
	if len(rec.list) != 0 {
		t.Errorf("audit records for a failed apply:\n%s", rec.lines())
	}
}

func TestApplyDisableLimit(t *testing.T) {
	st := staff(t)
	ctx := t.Context()
	src := parse(t, jaHeader+"sato,佐藤 花子,福祉課,福祉,有効,\n", true)
	cs, err := directory.Plan(ctx, st, src)
	if err != nil {
		t.Fatal(err)
	}
	if n := cs.Count(directory.ActionDisable); n != 4 {
		t.Fatalf("plan disables %d, want 4:\n%s", n, render(t, cs))
	}
	before := snapshot(t, st)
	if _, err := directory.Apply(ctx, st, cs, directory.WithMaxDisable(3)); !errors.Is(err, directory.ErrTooManyDisabled) {
		t.Fatalf("Apply over the limit = %v", err)
	}
	if snapshot(t, st) != before {
		t.Error("store changed by a refused apply")
	}
	res, err := directory.Apply(ctx, st, cs, directory.WithMaxDisable(3), directory.WithForce())
	if err != nil || res.Disabled != 4 || res.Changed != 1 {
		t.Fatalf("forced Apply = %+v, %v", res, err)
	}
}
