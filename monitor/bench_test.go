package monitor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
)

// BenchmarkObserve is the cost the gateway pays per record: a copy into
// the bounded queue, with Run consuming on its own goroutine. Dropped
// records are reported as drops/op.
func BenchmarkObserve(b *testing.B) {
	m, err := New(config.Monitor{}, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = m.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	rec := access(workday, "staff001", "PC-0001", "10.1.0.11", "chonai", "juki", "3A", "/residents/1", "allow")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Observe(rec)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(m.Dropped())/float64(b.N), "drops/op")
}

// BenchmarkRules is the monitor goroutine's cost per record (all rules),
// which bounds how many records per second it keeps up with.
func BenchmarkRules(b *testing.B) {
	m, err := New(config.Monitor{}, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithClock(func() time.Time { return workday }))
	if err != nil {
		b.Fatal(err)
	}
	// 2,000 staff reading 3A resident records, each a different page.
	recs := make([]*audit.Record, 2000)
	for u := range recs {
		recs[u] = access(workday, fmt.Sprint("staff", u), fmt.Sprint("PC-", u), "10.1.0.11", "chonai", "juki", "3A", "/residents/1", "allow")
	}
	paths := make([]string, 256)
	for i := range paths {
		paths[i] = fmt.Sprintf("/residents/%d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := recs[i%len(recs)]
		r.Time = workday.Add(time.Duration(i) * time.Millisecond)
		r.Path = paths[(i/len(recs))%len(paths)]
		m.process(r, false)
	}
}
