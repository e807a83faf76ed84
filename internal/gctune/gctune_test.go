package gctune

import (
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		floor, live uint64
		want        int
	}{
		{64 * mib, 0, 100},         // nothing measured yet
		{64 * mib, 64 * mib, 100},  // at the floor: Go's default
		{64 * mib, 200 * mib, 100}, // above it: Go's default
		{64 * mib, 32 * mib, 100},  // goal 64 MiB is what GOGC=100 gives
		{64 * mib, 16 * mib, 300},  // 16 × 4 = 64
		{64 * mib, 8 * mib, 700},   // 8 × 8 = 64
		{64 * mib, 1 * mib, 1000},  // capped
		{64 * mib, 40 * mib, 100},  // 60% would collect earlier than Go does
	} {
		if got := Percent(c.floor, c.live); got != c.want {
			t.Errorf("Percent(%d MiB, %d B) = %d, want %d", c.floor/mib, c.live, got, c.want)
		}
	}
}

// TestFollowsCollections runs real collections and checks that the tuner
// sets the GOGC its live-heap reading calls for after each, and restores
// the default on Stop.
func TestFollowsCollections(t *testing.T) {
	var mu sync.Mutex
	live := uint64(8 << 20)
	var sets []int
	tu := start(64<<20, func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		return live
	}, func(p int) int {
		mu.Lock()
		defer mu.Unlock()
		sets = append(sets, p)
		return 0
	})
	waitRuns(t, tu, 1)
	if got := tu.Percent(); got != 700 {
		t.Fatalf("after a collection with 8 MiB live: GOGC %d, want 700", got)
	}
	mu.Lock()
	live = 32 << 20
	mu.Unlock()
	waitRuns(t, tu, tu.Runs()+1)
	if got := tu.Percent(); got != 100 {
		t.Fatalf("after a collection with 32 MiB live: GOGC %d, want 100", got)
	}
	tu.Stop()
	n := tu.Runs()
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if tu.Runs() != n {
		t.Errorf("the tuner still ran after Stop")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sets) != 2 || sets[0] != 700 || sets[1] != 100 {
		t.Errorf("GOGC set to %v, want [700 100] (100 already set, so Stop sets nothing)", sets)
	}
}

// TestStartRealRuntime checks the real setting: with a floor far above
// this test's heap, a collection raises GOGC, and Stop gives back 100.
func TestStartRealRuntime(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	tu := Start(1 << 30)
	if tu == nil {
		t.Fatal("Start returned nil with GOGC and GOMEMLIMIT empty")
	}
	waitRuns(t, tu, 1)
	if p := current(); p <= 100 || p != tu.Percent() {
		t.Errorf("GOGC is %d, tuner says %d; want the same, above 100", p, tu.Percent())
	}
	tu.Stop()
	if p := current(); p != 100 {
		t.Errorf("after Stop GOGC is %d, want 100", p)
	}
}

func TestEnvironmentWins(t *testing.T) {
	t.Setenv("GOGC", "200")
	if Start(64<<20) != nil {
		t.Error("Start tuned with GOGC set in the environment")
	}
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "1GiB")
	if Start(64<<20) != nil {
		t.Error("Start tuned with GOMEMLIMIT set in the environment")
	}
	t.Setenv("GOMEMLIMIT", "")
	if Start(0) != nil {
		t.Error("Start tuned with a zero floor")
	}
	var nilTuner *Tuner
	nilTuner.Stop() // must not panic
}

// current reads GOGC without changing it.
func current() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// waitRuns forces collections until the tuner has seen n of them (its
// finalizer runs on the runtime's finalizer goroutine, after the cycle).
func waitRuns(t *testing.T, tu *Tuner, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for tu.Runs() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the tuner saw %d collections, want %d", tu.Runs(), n)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}
