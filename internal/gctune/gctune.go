// Package gctune keeps Go's garbage collector from running many times a
// second when the live heap is small.
//
// Go starts a collection when the heap has grown by GOGC percent (100)
// over what the last one left live, and at 4 MiB at least. A gateway keeps
// little live (a few MiB of caches and buffers) and allocates a few KiB per
// request, so under load it collected dozens of times a second: in the
// instruction counts of docs/performance.md, the collector took about a
// quarter of a proxied request, and collections set the latency tail.
// The tuner raises GOGC after each collection so that the next one starts
// at floor bytes of heap, never earlier than Go would start it by itself:
// the heap goal is max(floor, 2 × live). This is the "GC tuner" Uber
// described for its Go services; Go has no setting of its own for a
// minimum heap.
//
// An operator who sets GOGC or GOMEMLIMIT in the environment keeps Go's
// behaviour: Start does nothing then.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Bounds of the GOGC the tuner sets: never below Go's default, and capped so
// that a nearly empty heap does not get an unbounded percentage (the goal
// stays at floor anyway: the cap only matters below floor/11 of live heap).
const (
	minPercent = 100
	maxPercent = 1000
)

// Percent is the GOGC that puts the next collection at floor bytes when
// live bytes are live after this one, within [100, 1000].
func Percent(floor, live uint64) int {
	if live == 0 || floor <= live {
		return minPercent
	}
	p := (floor - live) * 100 / live
	switch {
	case p < minPercent:
		return minPercent
	case p > maxPercent:
		return maxPercent
	}
	return int(p)
}

// Tuner follows the collections of the process. Build it with Start.
type Tuner struct {
	floor   uint64
	live    func() uint64
	set     func(int) int
	stopped atomic.Bool

	mu      sync.Mutex
	percent int // last set, 0 before the first collection
	runs    int // collections seen
}

// Start tunes the collector for a heap floor of floor bytes until Stop.
// It reports nil, having changed nothing, when floor is 0 or the
// environment sets GOGC or GOMEMLIMIT.
func Start(floor uint64) *Tuner {
	if floor == 0 || os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	return start(floor, liveHeap, debug.SetGCPercent)
}

func start(floor uint64, live func() uint64, set func(int) int) *Tuner {
	t := &Tuner{floor: floor, live: live, set: set}
	t.arm()
	return t
}

// Stop gives the collector back Go's default (GOGC=100) and stops
// following it. It is safe on a nil Tuner.
func (t *Tuner) Stop() {
	if t == nil || t.stopped.Swap(true) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.percent != 0 && t.percent != minPercent {
		t.set(minPercent)
	}
	t.percent = minPercent
}

// Percent is the GOGC the tuner set last (100 before the first collection).
func (t *Tuner) Percent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.percent == 0 {
		return minPercent
	}
	return t.percent
}

// Runs is how many collections the tuner has seen.
func (t *Tuner) Runs() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.runs
}

// sentinel is garbage from birth: its finalizer runs after the next
// collection, adjusts GOGC and arms a new one. It holds a pointer so that
// it is not a tiny allocation, whose finalizer might never run.
type sentinel struct{ t *Tuner }

func (t *Tuner) arm() {
	runtime.SetFinalizer(&sentinel{t: t}, afterGC)
}

func afterGC(s *sentinel) {
	t := s.t
	if t.stopped.Load() {
		return
	}
	t.adjust()
	t.arm()
}

// adjust sets GOGC from the live heap the last collection left, when it
// differs from the one set.
func (t *Tuner) adjust() {
	p := Percent(t.floor, t.live())
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped.Load() {
		return
	}
	t.runs++
	if p != t.percent {
		t.set(p)
		t.percent = p
	}
}

// liveHeap is the heap the last collection marked live.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
