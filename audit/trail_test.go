package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/config"
)

// fakeClock is a settable clock for tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testConfig(t testing.TB) config.Audit {
	t.Helper()
	return config.Audit{Dir: t.TempDir(), CheckpointEvery: 10, CheckpointInterval: time.Hour}
}

func accessRecord(i int) *Record {
	return &Record{
		Event:      EventAccess,
		RequestID:  fmt.Sprintf("req-%d", i),
		User:       "tanaka",
		Roles:      []string{"zaimu", "staff"},
		Device:     "pc-0012",
		CertFP:     strings.Repeat("ab", 32),
		AMR:        []string{"hwk", "uv"},
		AuthTime:   time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
		IP:         "10.1.2.3",
		Zone:       "chonai",
		Route:      "zaimu",
		Class:      "3B",
		Segment:    "lgwan",
		Method:     "GET",
		Host:       "zaimu.gw.example.lg.jp",
		Path:       "/export?my_number=123456789012&page=2",
		Decision:   DecisionAllow,
		Enforced:   true,
		Rule:       "p, role:zaimu, 3B, read",
		Reasons:    []string{"ok"},
		Status:     200,
		Bytes:      1024,
		DurationMS: 1.5,
	}
}

// writeTrail appends n durable records and closes the trail.
func writeTrail(t testing.TB, cfg config.Audit, n int, opts ...Option) {
	t.Helper()
	tr, err := Open(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := tr.AppendDurable(context.Background(), accessRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustVerify(t testing.TB, dir string) *VerifyResult {
	t.Helper()
	keys, err := LoadPublicKeys(filepath.Join(dir, "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(dir, keys)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestAppendAndVerify(t *testing.T) {
	cfg := testConfig(t)
	cfg.Redact = []string{"my_number", "Token"}
	clk := newFakeClock()
	tr, err := Open(cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	rec := accessRecord(1)
	orig := *rec
	if err := tr.AppendDurable(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if rec.Seq == 0 || len(rec.Hash) != 64 || len(rec.Prev) != 64 || rec.Time.IsZero() {
		t.Fatalf("AppendDurable did not fill seq/prev/hash/time: %+v", rec)
	}
	if rec.Path != orig.Path {
		t.Fatalf("caller's path was modified: %q", rec.Path)
	}
	for i := 0; i < 25; i++ {
		if err := tr.Append(accessRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	res := mustVerify(t, cfg.Dir)
	if !res.OK() {
		t.Fatalf("verify: %v", res.Problem)
	}
	if !res.Closed || res.Unsealed != 0 {
		t.Fatalf("trail not closed by a final checkpoint: %+v", res)
	}
	// open + ckpt, 26 records, checkpoints every 10, final.
	if res.Records < 26+2 || res.Checkpoints < 3 {
		t.Fatalf("records=%d checkpoints=%d", res.Records, res.Checkpoints)
	}
	data := readAll(t, cfg.Dir)
	if bytes.Contains(data, []byte("123456789012")) || !bytes.Contains(data, []byte("my_number=REDACTED&page=2")) {
		t.Fatal("my_number was not redacted")
	}
	// The seq the caller got is the one on disk.
	var found bool
	for _, r := range readRecords(t, cfg.Dir) {
		if r.Seq == rec.Seq {
			found = r.Hash == rec.Hash && r.RequestID == "req-1"
		}
	}
	if !found {
		t.Fatalf("record seq %d with the returned hash not found", rec.Seq)
	}
}

func TestReopenContinuesChain(t *testing.T) {
	cfg := testConfig(t)
	writeTrail(t, cfg, 5)
	writeTrail(t, cfg, 5)
	res := mustVerify(t, cfg.Dir)
	if !res.OK() {
		t.Fatal(res.Problem)
	}
	var opens []string
	for _, r := range readRecords(t, cfg.Dir) {
		if r.Event == EventSystem && r.Action == ActionOpen {
			opens = append(opens, r.Detail)
		}
	}
	if len(opens) != 2 || !strings.Contains(opens[0], `"new"`) || !strings.Contains(opens[1], `"clean"`) {
		t.Fatalf("open records: %q", opens)
	}
}

func TestRotationAndRetention(t *testing.T) {
	cfg := testConfig(t)
	cfg.RotateSize = 2000
	cfg.Retention = 48 * time.Hour
	clk := newFakeClock()
	tr, err := Open(cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if err := tr.AppendDurable(context.Background(), accessRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(24 * time.Hour) // next UTC day: a new file
	for i := 0; i < 3; i++ {
		if err := tr.AppendDurable(context.Background(), accessRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	names, _ := listFiles(cfg.Dir)
	if len(names) < 3 || !strings.HasPrefix(names[0], "audit-20261123-0001") || !strings.HasPrefix(names[len(names)-1], "audit-20261124-") {
		t.Fatalf("files: %v", names)
	}
	if res := mustVerify(t, cfg.Dir); !res.OK() {
		t.Fatal(res.Problem)
	}
	// Age the first day's files past retention and rotate again.
	old := clk.Now().Add(-72 * time.Hour)
	for _, n := range names {
		if strings.Contains(n, "20261123") {
			os.Chtimes(filepath.Join(cfg.Dir, n), old, old)
		}
	}
	clk.Add(24 * time.Hour)
	if err := tr.AppendDurable(context.Background(), accessRecord(99)); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	after, _ := listFiles(cfg.Dir)
	for _, n := range after {
		if strings.Contains(n, "20261123") {
			t.Fatalf("old file %s not removed: %v", n, after)
		}
	}
	res := mustVerify(t, cfg.Dir)
	if !res.OK() {
		t.Fatal(res.Problem)
	}
	if res.RetainedFrom == 0 || res.FirstSeq == 1 {
		t.Fatalf("retention start not reported: %+v", res)
	}
}

func readAll(t testing.TB, dir string) []byte {
	t.Helper()
	names, err := listFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func readRecords(t testing.TB, dir string) []*Record {
	t.Helper()
	var out []*Record
	for line := range bytes.SplitSeq(readAll(t, dir), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		r, err := ParseRecord(line)
		if err != nil {
			continue
		}
		out = append(out, r)
	}
	return out
}

func TestClockStepBackKeepsFileOrder(t *testing.T) {
	cfg := testConfig(t)
	clk := newFakeClock()
	tr, err := Open(cfg, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(24 * time.Hour)
	tr.AppendDurable(t.Context(), accessRecord(1))
	clk.Add(-48 * time.Hour) // NTP steps the clock back across two midnights
	tr.AppendDurable(t.Context(), accessRecord(2))
	clk.Add(72 * time.Hour)
	tr.AppendDurable(t.Context(), accessRecord(3))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if res := mustVerify(t, cfg.Dir); !res.OK() {
		t.Fatal(res.Problem)
	}
	names, _ := listFiles(cfg.Dir)
	if len(names) != 3 || !strings.Contains(names[2], "20261125") {
		t.Fatalf("files: %v", names)
	}
}

// TestVerifyWhileWriting verifies a trail that is being written: no false
// alarm from a checkpoint.jws newer than the records read, or from a line
// in the middle of being written.
func TestVerifyWhileWriting(t *testing.T) {
	cfg := testConfig(t)
	cfg.CheckpointEvery = 7
	tr, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := tr.AppendDurable(t.Context(), accessRecord(i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 20; i++ {
		if res := mustVerify(t, cfg.Dir); !res.OK() {
			t.Fatalf("live verify %d: %v", i, res.Problem)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-done
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOneWriterPerTrail(t *testing.T) {
	cfg := testConfig(t)
	tr, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if second, err := Open(cfg); !errors.Is(err, ErrLocked) {
		if second != nil {
			second.Close()
		}
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	again.Close()
}
