package monitor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
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

// BenchmarkRulesOfficeMix is the monitor goroutine's cost per record on
// the synthetic office day (mostly class 2, some 3A/3B, logins, denials).
func BenchmarkRulesOfficeMix(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	people := make([]staff, 300)
	for i := range people {
		people[i] = staff{id: fmt.Sprintf("staff%03d", i), device: fmt.Sprintf("PC-%04d", i), zone: "chonai",
			ip: fmt.Sprintf("10.1.0.%d", i%250), counter: i%10 == 1, honestDenials: i % 3}
	}
	recs := officeDay(rng, people, jst(2026, 11, 24, 0, 0))
	m, err := New(config.Monitor{}, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithClock(func() time.Time { return workday }))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := *recs[i%len(recs)]
		r.Time = r.Time.Add(time.Duration(i/len(recs)) * 24 * time.Hour)
		m.process(&r, false)
	}
}

// BenchmarkRulesWorstCase is the monitor goroutine's cost per record when
// every record is an allowed read of a new 3A page by one of 2,000 users
// (every rule that keeps state is touched).
func BenchmarkRulesWorstCase(b *testing.B) {
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
	ids := make([]string, 4096) // a user's consecutive records differ
	for i := range ids {
		ids[i] = fmt.Sprintf("req-%d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := recs[i%len(recs)]
		r.Time = workday.Add(time.Duration(i) * time.Millisecond)
		r.Path = paths[(i/len(recs))%len(paths)]
		r.RequestID = ids[i%len(ids)]
		m.process(r, false)
	}
}
