package directory_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/directory"
	"github.com/sekisho/sekisho/store"
)

// A city's whole staff list: 3,000 rows.
func staffCSV(n int) []byte {
	var b strings.Builder
	b.WriteString(jaHeader)
	depts := []string{"財務課", "福祉課", "税務課"}
	roles := []string{"財務", "福祉", "税務"}
	for i := range n {
		fmt.Fprintf(&b, "s%05d,職員 %d,%s,%s,有効,\n", i, i, depts[i%3], roles[i%3])
	}
	return []byte(b.String())
}

func BenchmarkParseCSV3000(b *testing.B) {
	data := staffCSV(3000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := directory.ParseCSV("b.csv", data, directory.CSVOptions{Roles: testRoles}); err != nil {
			b.Fatal(err)
		}
	}
}

// Plan and apply the April transfers of a third of 3,000 staff in one
// SQLite transaction.
func BenchmarkPlanApply3000(b *testing.B) {
	data := staffCSV(3000)
	src, err := directory.ParseCSV("b.csv", data, directory.CSVOptions{Roles: testRoles})
	if err != nil {
		b.Fatal(err)
	}
	moved, err := directory.ParseCSV("b.csv", []byte(strings.NewReplacer("財務課,財務", "福祉課,福祉").Replace(string(data))), directory.CSVOptions{Roles: testRoles})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		st, err := store.Open(b.Context(), "sqlite", b.TempDir()+"/b.db")
		if err != nil {
			b.Fatal(err)
		}
		cs, _ := directory.Plan(b.Context(), st, src)
		if _, err := directory.Apply(b.Context(), st, cs); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		cs, err = directory.Plan(b.Context(), st, moved)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := directory.Apply(b.Context(), st, cs); err != nil || len(cs.Changes) != 1000 {
			b.Fatalf("%d changes, %v", len(cs.Changes), err)
		}
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
}
