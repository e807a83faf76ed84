package main

import "testing"

func TestRoundOrder(t *testing.T) {
	var targets []*target
	for i := 0; i <= tNginxLog; i++ {
		targets = append(targets, &target{name: string(rune('a' + i))})
	}
	// Without -compare, the targets' own order.
	if got := roundOrder(targets, 0); len(got) != len(targets) || got[0] != targets[0] || got[tSek] != targets[tSek] {
		t.Fatalf("roundOrder without a compare target changed the order")
	}
	cmp := &target{name: "cmp", compare: true}
	all := append(append([]*target{}, targets...), cmp)
	for r, want := range []int{tSek + 1, tSek} {
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
	}
	if got := roundOrder(all, 2); got[tSek+1] != cmp {
		t.Fatal("round 2 does not put the compare target after class 2 again")
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
