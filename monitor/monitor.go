package monitor

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
)

// Alert is one thing a person (the CSIRT) should look at: a rule that fired
// for a subject, with its repeats grouped.
type Alert struct {
	// ID is unique per alert, e.g. "20261123T101500Z-0007".
	ID string `json:"id"`
	// Rule is the rule name (config.RuleDenialBurst…).
	Rule string `json:"rule"`
	// Severity is "critical", "high", "medium" or "low".
	Severity string `json:"severity"`
	// Subject is who or what the alert is about: a user id, device id,
	// source address or component name, as SubjectKind says.
	Subject     string `json:"subject"`
	SubjectKind string `json:"subject_kind"`
	// Summary in Japanese, SummaryEN in English.
	Summary   string `json:"summary"`
	SummaryEN string `json:"summary_en"`
	// First and Last occurrence, and how many occurrences were grouped.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	Count int       `json:"count"`
	// Evidence are request ids (or "seq:N") of the records that made the
	// rule fire, at most maxEvidence, oldest first.
	Evidence []string `json:"evidence"`
}

// Subject kinds.
const (
	KindUser      = "user"
	KindDevice    = "device"
	KindIP        = "ip"
	KindComponent = "component"
)

// Responses a rule may trigger automatically (config MonitorRule.Response).
// stepup and revoke_session are given a user id, revoke_device a device id.
const (
	ResponseStepUp        = "stepup"
	ResponseRevokeSession = "revoke_session"
	ResponseRevokeDevice  = "revoke_device"
)

// Responder carries out an automatic response. It is called from the
// monitor's own goroutine with a bounded context.
type Responder func(ctx context.Context, action, subject string) error

// Option changes what [New] builds.
type Option func(*options)

type options struct {
	now       func() time.Time
	log       *slog.Logger
	reg       prometheus.Registerer
	sink      func(*audit.Record) error
	responder Responder
	hostname  string
	checks    []healthCheck
}

type healthCheck struct {
	component string
	check     func() error
}

// healthEvery is how often Run polls the checks given with WithHealthCheck.
const healthEvery = 5 * time.Second

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the monitor's metrics on reg. Default: none.
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithAlertSink makes every alert, and every automatic response, an audit
// record handed to sink (the trail's Append). Default: none.
func WithAlertSink(sink func(*audit.Record) error) Option {
	return func(o *options) { o.sink = sink }
}

// WithResponder enables the automatic responses configured per rule.
// Without it a configured response is logged as not carried out.
func WithResponder(r Responder) Option { return func(o *options) { o.responder = r } }

// WithHealthCheck makes Run poll check every few seconds and report a
// failure as [Monitor.ReportHealth] would (for example the trail's
// Healthy, which turns non-nil while the trail cannot be written).
func WithHealthCheck(component string, check func() error) Option {
	return func(o *options) { o.checks = append(o.checks, healthCheck{component, check}) }
}

// WithHostname sets the HOSTNAME of syslog messages. Default os.Hostname.
func WithHostname(h string) Option { return func(o *options) { o.hostname = h } }

// Monitor runs the rules over the record stream. Build it with [New], start
// [Monitor.Run], then hand it every appended record with
// [Monitor.Observe]. It is safe for concurrent use.
type Monitor struct {
	set  *settings
	opts options
	log  *slog.Logger
	met  *metrics
	off  bool

	in      chan event // health reports and flushes
	running atomic.Bool

	// Records wait in pending (at most set.queueSize) for the Run
	// goroutine, which takes them all at once: woken by wake when a batch
	// of wakeBatch is ready, else by delay, obsDelay after the first.
	pmu     sync.Mutex
	pending []audit.Record
	armed   bool
	wake    chan struct{}
	delay   *time.Timer

	// Owned by the Run goroutine.
	st       *state
	chans    []*channel
	actions  chan action
	seq      uint64
	lastDrop uint64

	dropped atomic.Uint64

	mu     sync.Mutex
	recent []*Alert // oldest first, at most recentSize
}

type eventKind uint8

const (
	evHealth eventKind = iota
	evFlush
)

// event is what ReportHealth and Flush hand the worker.
type event struct {
	kind      eventKind
	component string
	err       string
	done      chan struct{}
}

const recentSize = 256

// New builds a monitor from cfg (validated by config.Load; zero fields take
// the defaults in docs/monitoring.md). Notification channels are checked
// here (secrets present, CA files readable) but not dialled.
func New(cfg config.Monitor, opts ...Option) (*Monitor, error) {
	o := options{now: time.Now, log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	set, err := newSettings(cfg)
	if err != nil {
		return nil, fmt.Errorf("building monitor: %w", err)
	}
	size := set.queueSize
	if !cfg.On() {
		size = 0 // Observe returns before using it
	}
	m := &Monitor{
		set:     set,
		opts:    o,
		log:     o.log.With("component", "monitor"),
		off:     !cfg.On(),
		in:      make(chan event, min(size, 64)),
		wake:    make(chan struct{}, 1),
		delay:   time.NewTimer(time.Hour),
		st:      newState(),
		actions: make(chan action, 64),
		recent:  make([]*Alert, 0, recentSize),
	}
	m.delay.Stop()
	if m.met, err = newMetrics(o.reg, m.queueLen); err != nil {
		return nil, err
	}
	if m.off {
		return m, nil // no channel is dialled, no secret needed
	}
	for i, cc := range cfg.Channels {
		n, err := newNotifier(cc, o)
		if err != nil {
			return nil, fmt.Errorf("monitor channel %d (%s): %w", i, cc.Type, err)
		}
		perMin := or(cc.MaxPerMinute, defaultPerMinute)
		m.chans = append(m.chans, &channel{n: n, min: severityRank(cmpOr(cc.MinSeverity, "medium")), q: make(chan Alert, 256),
			limit: rate.NewLimiter(rate.Limit(float64(perMin)/60), perMin)})
	}
	return m, nil
}

// Observe hands the monitor one record that was just appended to the audit
// trail. It never blocks: when the queue is full the record is dropped and
// counted (sekisho_monitor_dropped_total; the monitor_overload rule
// reports it). Alert and checkpoint records are ignored. The record is
// copied, but its slices (Reasons, Roles, AMR) are read later on the
// monitor's goroutine: the caller must not change them after the call.
func (m *Monitor) Observe(rec *audit.Record) {
	if m.off || rec == nil || rec.Event == audit.EventAlert || rec.Event == audit.EventCheckpoint {
		return
	}
	m.pmu.Lock()
	n := len(m.pending)
	if n >= m.set.queueSize {
		m.pmu.Unlock()
		m.dropped.Add(1)
		m.met.dropped.Inc()
		return
	}
	m.pending = append(m.pending, *rec)
	if !m.armed {
		m.armed = true
		m.delay.Reset(obsDelay)
	}
	m.pmu.Unlock()
	if n+1 == wakeBatch {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// Observe wakes the Run goroutine once per batch of records, not once per
// record (each wake is a goroutine switch on the request path): at
// wakeBatch records, or obsDelay after the first. The rules work in
// minutes; a few milliseconds do not matter to them.
const (
	wakeBatch = 256
	obsDelay  = 5 * time.Millisecond
)

// queueLen is what waits for the Run goroutine, for the queue-length
// gauge.
func (m *Monitor) queueLen() float64 {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	return float64(len(m.pending) + len(m.in))
}

// drain runs the rules over the records waiting in pending, in the order
// they were observed. spare is the slice to swap in; drain returns the
// one to pass next time.
func (m *Monitor) drain(spare []audit.Record) []audit.Record {
	m.pmu.Lock()
	recs := m.pending
	m.pending = spare[:0]
	m.armed = false
	m.pmu.Unlock()
	for i := range recs {
		m.process(&recs[i], false)
		recs[i] = audit.Record{} // drop the references for the GC
	}
	return recs
}

// ErrWarmAfterRun is returned by [Monitor.Warm] once Run has started.
var ErrWarmAfterRun = errors.New("monitor: Warm must be called before Run")

// Warm runs the rules over past records (for example the last weeks of the
// trail: audit.Query(dir, audit.Filter{Since: …})) to learn each user's
// baseline, devices and zones, without raising alerts. Call it before
// [Monitor.Run], on the same goroutine. Unreadable lines are skipped; any
// other error ends it. It returns how many records it learned from.
func (m *Monitor) Warm(ctx context.Context, recs iter.Seq2[*audit.Record, error]) (int, error) {
	if m.off {
		return 0, nil
	}
	if m.running.Load() {
		return 0, ErrWarmAfterRun
	}
	n := 0
	for r, err := range recs {
		if err != nil {
			var le *audit.LineError
			if errors.As(err, &le) {
				continue
			}
			return n, fmt.Errorf("reading past records for the monitor: %w", err)
		}
		if n%1024 == 0 && ctx.Err() != nil {
			return n, fmt.Errorf("warming the monitor: %w", ctx.Err())
		}
		if r == nil || r.Event == audit.EventAlert || r.Event == audit.EventCheckpoint {
			continue
		}
		m.process(r, true)
		n++
	}
	return n, nil
}

// ReportHealth tells the monitor that a component (the audit trail, a sink,
// the store…) failed (err != nil) or works again (err == nil). A failure
// raises audit_failure for that component; repeats are grouped.
func (m *Monitor) ReportHealth(component string, err error) {
	if m.off || err == nil {
		return
	}
	select {
	case m.in <- event{kind: evHealth, component: component, err: err.Error()}:
	default:
		m.dropped.Add(1)
		m.met.dropped.Inc()
	}
}

// Flush waits until every record handed over before it has gone through
// the rules, and groups that have gone quiet are closed. Run must be
// running.
func (m *Monitor) Flush(ctx context.Context) error {
	if m.off {
		return nil
	}
	done := make(chan struct{})
	select {
	case m.in <- event{kind: evFlush, done: done}:
	case <-ctx.Done():
		return fmt.Errorf("flushing the monitor: %w", ctx.Err())
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flushing the monitor: %w", ctx.Err())
	}
}

// Recent returns up to n of the latest alerts, newest first (n <= 0: all
// kept, at most 256). An alert still grouping repeats shows its current
// count. The alerts are copies.
func (m *Monitor) Recent(n int) []Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	size := len(m.recent)
	if n <= 0 || n > size {
		n = size
	}
	out := make([]Alert, 0, n)
	for i := size - 1; i >= size-n; i-- {
		c := *m.recent[i]
		c.Evidence = slices.Clone(c.Evidence)
		out = append(out, c)
	}
	return out
}

// Dropped is how many records Observe dropped because the queue was full.
func (m *Monitor) Dropped() uint64 { return m.dropped.Load() }

// ErrRunning is returned by a second concurrent [Monitor.Run].
var ErrRunning = errors.New("monitor already running")

// Run applies the rules until ctx ends: it reads the queue, closes quiet
// alert groups, delivers notifications with retry and carries out
// automatic responses. Call it once, on its own goroutine.
func (m *Monitor) Run(ctx context.Context) error {
	if m.off {
		<-ctx.Done()
		return nil
	}
	if !m.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer m.running.Store(false)
	var wg sync.WaitGroup
	for _, c := range m.chans {
		wg.Go(func() { m.deliver(ctx, c) })
	}
	wg.Go(func() { m.respond(ctx) })
	defer wg.Wait()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastCheck time.Time
	var spare []audit.Record
	for {
		select {
		case <-ctx.Done():
			for _, c := range m.chans {
				c.n.close()
			}
			return nil
		case ev := <-m.in:
			// Records observed before a flush or a health report go first.
			spare = m.drain(spare)
			m.handle(ev)
		case <-m.wake:
			spare = m.drain(spare)
		case <-m.delay.C:
			spare = m.drain(spare)
		case now := <-tick.C:
			spare = m.drain(spare)
			m.sweep(m.opts.now())
			if now.Sub(lastCheck) >= healthEvery {
				lastCheck = now
				for _, c := range m.opts.checks {
					if err := c.check(); err != nil {
						m.health(c.component, err.Error())
					}
				}
			}
		}
	}
}

func (m *Monitor) handle(ev event) {
	switch ev.kind {
	case evHealth:
		m.health(ev.component, ev.err)
	case evFlush:
		m.sweep(m.opts.now())
		close(ev.done)
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
