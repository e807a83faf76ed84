package main

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

func TestRoundOrder(t *testing.T) {
	var targets []*target
	for i := 0; i <= tTLSNoFast; i++ {
		targets = append(targets, &target{name: string(rune('a' + i))})
	}
	// Without -compare: the targets' own order with class 2 and the floor
	// with sekisho's bytes right after nginx (TLS class 2 after TLS
	// nginx), reversed in odd rounds.
	var want []*target
	for _, i := range []int{tUp, tNginx, tSek, tContract, tBare, tPooled, tSync, tNoMon, tNoFast, tFloor, tNginxLog, tTLSNginx, tTLSSek, tTLSPooled, tTLSNoFast} {
		want = append(want, targets[i])
	}
	if got := roundOrder(targets, 0); !slices.Equal(got, want) {
		t.Fatalf("round 0: %v, want %v", names(got), names(want))
	}
	rev := slices.Clone(want)
	slices.Reverse(rev)
	if got := roundOrder(targets, 1); !slices.Equal(got, rev) {
		t.Fatalf("round 1: %v, want the reverse of round 0", names(got))
	}
	// Without the TLS targets (-tls=false) nothing is lost or repeated.
	if got := roundOrder(targets[:tTLSNginx], 0); !slices.Equal(got, want[:tTLSNginx]) {
		t.Fatalf("without TLS: %v", names(got))
	}
	cmp := &target{name: "cmp", compare: true}
	all := append(append([]*target{}, targets...), cmp)
	for r := range 3 {
		got := roundOrder(all, r)
		if len(got) != len(all) {
			t.Fatalf("round %d: %d targets, want %d", r, len(got), len(all))
		}
		seen := map[*target]bool{}
		for _, x := range got {
			seen[x] = true
		}
		if len(seen) != len(all) {
			t.Fatalf("round %d: a target is missing or repeated", r)
		}
		// The compare target next to class 2, after it in even rounds;
		// nginx next to class 2, before it in even rounds.
		k, l, n := indexOf(got, cmp), indexOf(got, targets[tSek]), indexOf(got, targets[tNginx])
		if (r%2 == 0 && (k != l+1 || n != l-1)) || (r%2 == 1 && (k != l-1 || n != l+1)) {
			t.Fatalf("round %d: nginx at %d, class 2 at %d, the compare target at %d", r, n, l, k)
		}
	}
	// A TLS compare target goes next to the TLS class 2.
	cmpTLS := &target{name: "cmp tls", compare: true, tls: &tls.Config{}}
	all = append(all, cmpTLS)
	for r := range 2 {
		got := roundOrder(all, r)
		i, j := indexOf(got, cmpTLS), indexOf(got, targets[tTLSSek])
		if len(got) != len(all) || (r%2 == 0 && i != j+1) || (r%2 == 1 && i != j-1) {
			t.Fatalf("round %d: the TLS compare target at %d, TLS class 2 at %d", r, i, j)
		}
		if k, l := indexOf(got, cmp), indexOf(got, targets[tSek]); (r%2 == 0 && k != l+1) || (r%2 == 1 && k != l-1) {
			t.Fatalf("round %d: the compare target at %d, class 2 at %d", r, k, l)
		}
	}
}

// The -users target is measured right after class 2 and before a compare
// target (class 2, users, compare), in reverse in odd rounds.
func TestRoundOrderUsers(t *testing.T) {
	var targets []*target
	for i := 0; i <= tContract; i++ {
		targets = append(targets, &target{name: string(rune('a' + i))})
	}
	many := &target{name: "many", users: true}
	cmp := &target{name: "cmp", compare: true}
	all := append(append([]*target{}, targets...), many, cmp)
	for r := range 2 {
		got := roundOrder(all, r)
		if len(got) != len(all) {
			t.Fatalf("round %d: %d targets, want %d", r, len(got), len(all))
		}
		s, u, c := indexOf(got, targets[tSek]), indexOf(got, many), indexOf(got, cmp)
		if (r%2 == 0 && (u != s+1 || c != u+1)) || (r%2 == 1 && (u != s-1 || c != u-1)) {
			t.Fatalf("round %d: class 2 at %d, users at %d, compare at %d", r, s, u, c)
		}
	}
}

func TestUsersReport(t *testing.T) {
	one := &target{name: "one", results: []result{{rps: 100, cpu: 10, p99: 4}, {rps: 200, cpu: 20, p99: 8}}}
	many := &target{name: "many", users: true, results: []result{{rps: 90, cpu: 11, p99: 5}, {rps: 160, cpu: 30, p99: 14}}}
	var b strings.Builder
	usersReport(&b, one, many)
	for _, want := range []string{"0.90 0.80 (中央値 median 0.85)", "1.10 1.50 (中央値 median 1.30)", "p99 1.25 1.75 (中央値 median 1.50)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report %q lacks %q", b.String(), want)
		}
	}
}

func names(ts []*target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.name)
	}
	return out
}

func indexOf(ts []*target, x *target) int {
	for i, t := range ts {
		if t == x {
			return i
		}
	}
	return -1
}

func TestMedianOf(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := medianOf(c.in); got != c.want {
			t.Errorf("medianOf(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	in := []float64{3, 1, 2}
	medianOf(in)
	if in[0] != 3 {
		t.Error("medianOf sorted its argument")
	}
}
