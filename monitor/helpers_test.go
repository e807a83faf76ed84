package monitor

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
)

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// sink collects the records the monitor writes.
type sink struct {
	mu   sync.Mutex
	recs []*audit.Record
}

func (s *sink) append(r *audit.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *r
	s.recs = append(s.recs, &c)
	return nil
}

func (s *sink) records() []*audit.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*audit.Record(nil), s.recs...)
}

// jst builds a time in Japan.
func jst(y int, mo time.Month, d, h, mi int) time.Time {
	return time.Date(y, mo, d, h, mi, 0, 0, time.FixedZone("JST", 9*3600))
}

// Tuesday 24 November 2026, 10:00 JST: an ordinary working day.
var workday = jst(2026, 11, 24, 10, 0)

type harness struct {
	t    *testing.T
	m    *Monitor
	clk  *clock
	sink *sink
	reg  *prometheus.Registry
}

// start builds a monitor on cfg with a fake clock at t0, runs it, and stops
// it when the test ends.
func start(t *testing.T, cfg config.Monitor, t0 time.Time, opts ...Option) *harness {
	t.Helper()
	h := &harness{t: t, clk: &clock{t: t0}, sink: &sink{}, reg: prometheus.NewRegistry()}
	all := append([]Option{
		WithClock(h.clk.now), WithAlertSink(h.sink.append), WithRegisterer(h.reg),
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}, opts...)
	m, err := New(cfg, all...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.m = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return h
}

// feed observes records and waits until the rules have seen them.
func (h *harness) feed(recs ...*audit.Record) {
	h.t.Helper()
	for _, r := range recs {
		if !r.Time.IsZero() && r.Time.After(h.clk.now()) {
			h.clk.set(r.Time)
		}
		h.m.Observe(r)
	}
	h.flush()
}

func (h *harness) flush() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.m.Flush(ctx); err != nil {
		h.t.Fatal(err)
	}
}

// alerts returns the alert records written so far for rule ("": all).
func (h *harness) alerts(rule string) []*audit.Record {
	var out []*audit.Record
	for _, r := range h.sink.records() {
		if r.Event == audit.EventAlert && (rule == "" || r.Action == rule) {
			out = append(out, r)
		}
	}
	return out
}

func detailOf(t *testing.T, r *audit.Record) alertDetail {
	t.Helper()
	var d alertDetail
	d.Alert = new(Alert)
	if err := json.Unmarshal([]byte(r.Detail), &d); err != nil {
		t.Fatalf("alert detail is not JSON: %v\n%s", err, r.Detail)
	}
	return d
}

// access builds an access record.
func access(at time.Time, user, device, ip, zone, route, class, path, decision string, reasons ...string) *audit.Record {
	return &audit.Record{
		Time: at, Event: audit.EventAccess, RequestID: "req-" + at.Format("150405.000000") + "-" + user,
		User: user, Device: device, IP: ip, Zone: zone, Route: route, Class: class,
		Method: "GET", Path: path, Decision: decision, Enforced: true, Reasons: reasons,
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return mt.GetCounter().GetValue()
		}
	}
	return 0
}

// TestQueueGauge: sekisho_monitor_queue_records counts the records waiting
// for the rules, up to queue_size (the rest are dropped and counted), and
// goes back to 0 once Run has taken them.
func TestQueueGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(config.Monitor{QueueSize: 2}, WithRegisterer(reg), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	gauge := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "sekisho_monitor_queue_records" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no sekisho_monitor_queue_records")
		return 0
	}
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		m.Observe(access(at.Add(time.Duration(i)*time.Second), "u", "", "10.0.0.1", "chonai", "zaimu", "2", "/", "allow"))
	}
	if g, d := gauge(), m.Dropped(); g != 2 || d != 1 {
		t.Fatalf("before Run: gauge %v, dropped %d; want 2 and 1", g, d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if g := gauge(); g != 0 {
		t.Errorf("after Flush: gauge %v, want 0", g)
	}
	cancel()
	<-done
}
