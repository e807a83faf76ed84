package audit

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sekisho/sekisho/config"
)

// BenchmarkAppendDurable measures durable appends from many concurrent
// callers sharing fsyncs (group commit). Report: records/s.
func BenchmarkAppendDurable(b *testing.B) {
	cfg := config.Audit{Dir: b.TempDir(), CheckpointInterval: time.Hour}
	reg := prometheus.NewRegistry()
	tr, err := Open(cfg, WithRegisterer(reg))
	if err != nil {
		b.Fatal(err)
	}
	rec := accessRecord(1)
	// In-flight durable appends needed for a rate R with fsync latency L are
	// R×L (Little's law): 100,000/s at 5–10 ms per fsync on this shared
	// disk needs 500–1,000 requests in flight. 1024 × GOMAXPROCS appenders.
	b.SetParallelism(1024)
	b.ResetTimer()
	cpu := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		r := *rec
		for pb.Next() {
			if err := tr.AppendDurable(context.Background(), &r); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportRates(b, uint64(b.N), cpu)
	// How the group commit behaved: records per fsync and fsync latency.
	var m dto.Metric
	if tr.m.batch.(prometheus.Metric).Write(&m) == nil && m.Histogram.GetSampleCount() > 0 {
		b.ReportMetric(m.Histogram.GetSampleSum()/float64(m.Histogram.GetSampleCount()), "records/fsync")
	}
	if tr.m.fsync.(prometheus.Metric).Write(&m) == nil && m.Histogram.GetSampleCount() > 0 {
		b.ReportMetric(1000*m.Histogram.GetSampleSum()/float64(m.Histogram.GetSampleCount()), "ms/fsync")
	}
	if err := tr.Close(); err != nil {
		b.Fatal(err)
	}
}

// cpuTime is the process's user+system CPU time. On a shared machine the
// wall-clock rate depends on the neighbours; records per CPU-second does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportRates(b *testing.B, n uint64, cpuStart time.Duration) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
	if cpu := cpuTime() - cpuStart; cpu > 0 {
		b.ReportMetric(float64(n)/cpu.Seconds(), "records/cpu-s")
	}
}

// BenchmarkAppend measures queued (not awaited) appends.
func BenchmarkAppend(b *testing.B) {
	cfg := config.Audit{Dir: b.TempDir(), CheckpointInterval: time.Hour}
	tr, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	rec := accessRecord(1)
	b.ResetTimer()
	cpu := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for tr.Append(rec) == ErrBacklog {
				time.Sleep(time.Millisecond)
			}
		}
	})
	if err := tr.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	reportRates(b, uint64(b.N), cpu)
}

var benchTrail struct {
	dir     string
	records uint64
}

// BenchmarkVerify measures verification speed over a 200,000-record trail.
// Report: records/s.
func BenchmarkVerify(b *testing.B) {
	if benchTrail.dir == "" {
		dir, err := os.MkdirTemp("", "sekisho-audit-bench")
		if err != nil {
			b.Fatal(err)
		}
		tr, err := Open(config.Audit{Dir: dir, CheckpointInterval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 200_000; i++ {
			if err := tr.Append(accessRecord(i)); err != nil {
				b.Fatal(err)
			}
		}
		if err := tr.Close(); err != nil {
			b.Fatal(err)
		}
		benchTrail.dir = dir
	}
	keys, err := LoadPublicKeys(filepath.Join(benchTrail.dir, "audit.key"))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := cpuTime()
	var n uint64
	for i := 0; i < b.N; i++ {
		res, err := Verify(benchTrail.dir, keys)
		if err != nil || !res.OK() {
			b.Fatal(err, res.Problem)
		}
		n += res.Records
	}
	reportRates(b, n, cpu)
}
