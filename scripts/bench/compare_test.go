package main

import (
	"crypto/tls"
	"slices"
	"testing"
)

func TestRoundOrder(t *testing.T) {
	var targets []*target
	for i := 0; i <= tTLSNoFast; i++ {
		targets = append(targets, &target{name: string(rune('a' + i))})
	}
	// Without -compare, the targets' own order, reversed in odd rounds.
	if got := roundOrder(targets, 0); !slices.Equal(got, targets) {
		t.Fatalf("roundOrder without a compare target changed the order")
	}
	rev := slices.Clone(targets)
	slices.Reverse(rev)
	if got := roundOrder(targets, 1); !slices.Equal(got, rev) {
		t.Fatalf("round 1 is not the reverse order")
	}
	cmp := &target{name: "cmp", compare: true}
	all := append(append([]*target{}, targets...), cmp)
	last := len(all) - 1
	for r, want := range []int{tSek + 1, last - tSek - 1, tSek + 1} {
		got := roundOrder(all, r)
		if len(got) != len(all) {
			t.Fatalf("round %d: %d targets, want %d", r, len(got), len(all))
		}
		if got[want] != cmp {
			t.Fatalf("round %d: the compare target at %d, want %d", r, indexOf(got, cmp), want)
		}
		seen := map[*target]bool{}
		for _, x := range got {
			seen[x] = true
		}
		if len(seen) != len(all) {
			t.Fatalf("round %d: a target is missing or repeated", r)
		}
		// Every pair of the targets' own keeps its order in even rounds
		// and swaps it in odd ones.
		if i, j := indexOf(got, targets[tNginx]), indexOf(got, targets[tSek]); (r%2 == 0) != (i < j) {
			t.Fatalf("round %d: nginx at %d, class 2 at %d", r, i, j)
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
