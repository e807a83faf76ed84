package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sekisho/sekisho/reqctx"
)

// Metrics are the gateway's Prometheus series.
type Metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	decisions      *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	auditFailures  prometheus.Counter

	cacheMu sync.Mutex
	cache   atomic.Pointer[map[seriesKey]*cachedSeries]
}

// NewMetrics registers the gateway's series on reg (a new registry if nil,
// with the Go and process collectors).
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	}
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_requests_total", Help: "Requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sekisho_request_duration_seconds", Help: "Request latency through the gateway.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_decisions_total", Help: "Access decisions by result (allow, deny, stepup, login).",
		}, []string{"result"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_upstream_errors_total", Help: "Upstream connection errors and timeouts by route.",
		}, []string{"route"}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sekisho_audit_failures_total", Help: "Audit records that could not be written (alarm).",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.decisions, m.upstreamErrors, m.auditFailures)
	return m
}

// Registry is where other packages register their series.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) decision(result string) { m.series(result, decisionSeries).count.Inc() }

func (m *Metrics) observe(info *reqctx.Info, rw *recordingWriter, end time.Time) {
	route := info.Route
	if route == "" {
		route = "-"
	}
	s := m.series(route, rw.status())
	s.count.Inc()
	s.latency.Observe(end.Sub(info.Received).Seconds())
}

// decisionSeries is the code under which series keeps the decision
// counters (HTTP status codes are never negative).
const decisionSeries = -1

// seriesKey names one cached series: a route and status code, or a
// decision result and decisionSeries.
type seriesKey struct {
	name string
	code int
}

// cachedSeries holds the children of the vectors one request updates, so
// that a request does not hash its labels and look them up in the vectors
// (and format its status code) every time.
type cachedSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// series returns the cached children for key, creating them on first use.
// The map is copied on write: the set of routes, codes and results is
// small and fixed after the first requests, so reads take no lock.
func (m *Metrics) series(name string, code int) *cachedSeries {
	k := seriesKey{name, code}
	if p := m.cache.Load(); p != nil {
		if s, ok := (*p)[k]; ok {
			return s
		}
	}
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	old := map[seriesKey]*cachedSeries{}
	if p := m.cache.Load(); p != nil {
		old = *p
	}
	if s, ok := old[k]; ok {
		return s
	}
	s := &cachedSeries{}
	if code == decisionSeries {
		s.count = m.decisions.WithLabelValues(name)
	} else {
		s.count = m.requests.WithLabelValues(name, strconv.Itoa(code))
		s.latency = m.latency.WithLabelValues(name)
	}
	next := make(map[seriesKey]*cachedSeries, len(old)+1)
	for kk, v := range old {
		next[kk] = v
	}
	next[k] = s
	m.cache.Store(&next)
	return s
}

// Handler serves /metrics, /healthz and /readyz for the metrics listener.
// ready reports whether the gateway can serve (store and audit reachable).
func (m *Metrics) Handler(ready func() error, pprofOn bool) http.Handler {
	mux := http.NewServeMux()
	if pprofOn {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready != nil {
			if err := ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, "not ready: "+err.Error()+"\n")
				return
			}
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	return mux
}

func jsonEncode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	return enc.Encode(v)
}
