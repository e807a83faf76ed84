package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sekisho/sekisho/config"
)

const crashEnv = "SEKISHO_AUDIT_CRASH_DIR"

// TestCrashChild is the child of TestCrashRecovery: it appends durably from
// many goroutines and prints "ACK <request_id> <seq>" after each
// acknowledged append, until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("child process of TestCrashRecovery")
	}
	tr, err := Open(config.Audit{Dir: dir, CheckpointEvery: 100, RotateSize: 64 << 10})
	if err != nil {
		fmt.Println("OPEN-ERROR", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				r := accessRecord(i)
				r.RequestID = fmt.Sprintf("g%d-%d", g, i)
				if err := tr.AppendDurable(context.Background(), r); err != nil {
					fmt.Println("ERROR", err)
					os.Exit(4)
				}
				mu.Lock()
				os.Stdout.WriteString("ACK " + r.RequestID + " " + strconv.FormatUint(r.Seq, 10) + "\n")
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	for round := 0; round < 2; round++ { // kill twice: recovery of a recovered trail too
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := map[string]uint64{} // request id → acknowledged seq
		sc := bufio.NewScanner(out)
		killed := false
		for sc.Scan() {
			line := sc.Text()
			if ack, ok := strings.CutPrefix(line, "ACK "); ok {
				id, seq, _ := strings.Cut(ack, " ")
				n, err := strconv.ParseUint(seq, 10, 64)
				if err != nil {
					t.Fatalf("child printed %q", line)
				}
				acked[id] = n
			} else if !strings.HasPrefix(line, "PASS") && line != "" {
				t.Errorf("child: %s", line)
			}
			if len(acked) >= 3000 && !killed {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		if err := cmd.Wait(); err == nil {
			t.Fatal("child exited normally; want killed")
		}
		if !killed {
			t.Fatalf("child stopped after %d acks", len(acked))
		}
		// Reopen (recovery) and close cleanly, then verify and look for every ack.
		tr, err := Open(config.Audit{Dir: dir})
		if err != nil {
			t.Fatalf("reopen after kill -9: %v", err)
		}
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
		res := mustVerify(t, dir)
		if !res.OK() {
			t.Fatalf("trail after kill -9 does not verify: %v", res.Problem)
		}
		present := map[uint64]string{} // seq → request id on disk
		for _, r := range readRecords(t, dir) {
			present[r.Seq] = r.RequestID
		}
		lost := 0
		for id, seq := range acked {
			if present[seq] != id {
				lost++
			}
		}
		if lost > 0 {
			t.Fatalf("round %d: %d of %d acknowledged records lost", round, lost, len(acked))
		}
		t.Logf("round %d: %d acknowledged records all present; %d records verified, %d torn writes sealed", round, len(acked), res.Records, len(res.Torn))
	}
}

func TestTornTailSealed(t *testing.T) {
	for name, torn := range map[string]string{
		"partial line":       `{"seq":99,"time":"2026-11-23T10:00:00.000000Z","event":"acc`,
		"zeros and a line":   "\x00\x00\x00\x00\n{\"seq\":1}\n",
		"half of two writes": "{\"seq\":5,\"broken\n{\"seq\":6",
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			writeTrail(t, cfg, 5)
			names, _ := listFiles(cfg.Dir)
			path := filepath.Join(cfg.Dir, names[len(names)-1])
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(torn)
			f.Close()
			// Unsealed: a lone unterminated fragment is noted (a write in
			// progress looks the same); anything more is a problem.
			res := mustVerify(t, cfg.Dir)
			if strings.Count(torn, "\n") == 0 {
				if !res.OK() || res.PartialTail != int64(len(torn)) {
					t.Fatalf("partial tail: %+v %v", res, res.Problem)
				}
			} else if res.OK() || !strings.Contains(res.Problem.ReasonEN, "not sealed") {
				t.Fatalf("unsealed torn tail: %+v", res.Problem)
			}
			writeTrail(t, cfg, 3)
			res = mustVerify(t, cfg.Dir)
			if !res.OK() {
				t.Fatalf("after reopen: %v", res.Problem)
			}
			if len(res.Torn) != 1 {
				t.Fatalf("torn notes: %+v", res.Torn)
			}
			data, _ := os.ReadFile(path)
			if !strings.Contains(string(data), strings.TrimSuffix(torn, "\n")) {
				t.Fatal("the torn bytes were dropped; they must stay in place")
			}
			var seal *Record
			for _, r := range readRecords(t, cfg.Dir) {
				if r.Action == ActionTornSealed {
					seal = r
				}
			}
			if seal == nil || !strings.Contains(seal.Detail, `"length":`) {
				t.Fatalf("no seal record: %+v", seal)
			}
			// Editing the sealed bytes is detected.
			edited := strings.Replace(string(data), strings.TrimSuffix(torn, "\n")[:4], "XXXX", 1)
			os.WriteFile(path, []byte(edited), 0o600)
			if res := mustVerify(t, cfg.Dir); res.OK() {
				t.Fatal("edited torn region not detected")
			}
		})
	}
}

func TestOpenFailsOnUnusableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	os.WriteFile(file, nil, 0o600)
	if _, err := Open(config.Audit{Dir: file}); err == nil {
		t.Fatal("Open succeeded on a file")
	}
	if os.Geteuid() == 0 {
		t.Log("running as root: chmod 0500 does not stop writes, so the read-only directory case is not tested here")
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if _, err := Open(config.Audit{Dir: dir}); err == nil {
		t.Fatal("Open succeeded in a read-only directory")
	}
}

// TestFailClosedAndRecover gives the trail /dev/full in place of the files
// it opens (the kernel answers ENOSPC to writes; this works as root too,
// where chmod would not), then real files again, and expects the trail to
// fail closed and recover. The fault is injected through the unexported
// file-opening hook; the error is the kernel's.
func TestFailClosedAndRecover(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but /dev/full is missing: the fail-closed test needs it")
		}
		t.Skip("no /dev/full")
	}
	cfg := testConfig(t)
	cfg.RotateSize = 1 // every batch starts a new file
	clk := newFakeClock()
	reg := prometheus.NewRegistry()
	var full atomic.Bool
	opener := func(o *options) {
		o.openFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
			if full.Load() {
				return os.OpenFile("/dev/full", os.O_WRONLY, 0)
			}
			return os.OpenFile(name, flag, perm)
		}
	}
	tr, err := Open(cfg, WithClock(clk.Now), WithRegisterer(reg), opener)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	if err := tr.AppendDurable(ctx, accessRecord(1)); err != nil {
		t.Fatal(err)
	}
	full.Store(true)

	async := accessRecord(2)
	async.RequestID = "async-before-failure"
	if err := tr.Append(async); err != nil {
		t.Fatal(err)
	}
	durable := accessRecord(3)
	durable.RequestID = "durable-refused"
	err = tr.AppendDurable(ctx, durable)
	if !errors.Is(err, ErrUnhealthy) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("AppendDurable on a full disk = %v; want ErrUnhealthy wrapping ENOSPC", err)
	}
	if tr.Healthy() == nil {
		t.Fatal("Healthy() = nil while the disk is full")
	}
	if err := tr.Append(accessRecord(4)); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("Append while unhealthy = %v", err)
	}
	if testutil.ToFloat64(tr.m.healthy) != 0 || testutil.ToFloat64(tr.m.writeErrors) < 1 {
		t.Fatal("alarm metrics not set")
	}

	full.Store(false) // the disk has room again
	deadline := time.Now().Add(10 * time.Second)
	for tr.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("did not recover: %v", tr.Healthy())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if testutil.ToFloat64(tr.m.healthy) != 1 {
		t.Fatal("healthy gauge not restored")
	}
	if err := tr.AppendDurable(ctx, accessRecord(5)); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	res := mustVerify(t, cfg.Dir)
	if !res.OK() {
		t.Fatal(res.Problem)
	}
	var sawAsync, sawRefused, sawOutage bool
	for _, r := range readRecords(t, cfg.Dir) {
		sawAsync = sawAsync || r.RequestID == "async-before-failure"
		sawRefused = sawRefused || r.RequestID == "durable-refused"
		if r.Action == ActionWriteFailed && strings.Contains(r.Detail, "no space left") && strings.Contains(r.Detail, `"refused_durable":1`) {
			sawOutage = true
		}
	}
	if !sawAsync || sawRefused || !sawOutage {
		t.Fatalf("async kept=%v, refused durable written=%v, outage recorded=%v", sawAsync, sawRefused, sawOutage)
	}
}

// TestDurableRefusedDuringOutageCounted: a durable append refused at the
// door once the trail is already unhealthy (an asynchronous write failed
// first) is counted in the write_failed record like one refused in the
// failing batch. It was reported as 0 before.
func TestDurableRefusedDuringOutageCounted(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but /dev/full is missing: the fail-closed test needs it")
		}
		t.Skip("no /dev/full")
	}
	cfg := testConfig(t)
	cfg.RotateSize = 1 // every batch starts a new file
	var full atomic.Bool
	tr, err := Open(cfg, WithClock(newFakeClock().Now), WithRegisterer(prometheus.NewRegistry()), func(o *options) {
		o.openFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
			if full.Load() {
				return os.OpenFile("/dev/full", os.O_WRONLY, 0)
			}
			return os.OpenFile(name, flag, perm)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	if err := tr.AppendDurable(ctx, accessRecord(1)); err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	if err := tr.Append(accessRecord(2)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for tr.Healthy() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the asynchronous write on a full disk did not make the trail unhealthy")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 2 {
		if err := tr.AppendDurable(ctx, accessRecord(10+i)); !errors.Is(err, ErrUnhealthy) {
			t.Fatalf("durable append while unhealthy = %v", err)
		}
	}
	full.Store(false)
	for tr.Healthy() != nil {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("did not recover: %v", tr.Healthy())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	for _, r := range readRecords(t, cfg.Dir) {
		if r.Action == ActionWriteFailed {
			if !strings.Contains(r.Detail, `"refused_durable":2`) {
				t.Fatalf("write_failed record %s, want refused_durable 2", r.Detail)
			}
			return
		}
	}
	t.Fatal("no write_failed record")
}
