package session

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	verify                                                *prometheus.CounterVec
	verifyOK, verifyInvalid, verifyExpired, verifyRevoked prometheus.Counter
	verifyDevice                                          prometheus.Counter
	cache                                                 *prometheus.CounterVec
	cacheHits, cacheMisses                                prometheus.Counter
	revocations                                           prometheus.Counter
	revocationLag                                         prometheus.Histogram
	syncErrors                                            prometheus.Counter
	keysCreated                                           *prometheus.CounterVec
}

func newMetrics() metrics {
	m := metrics{
		verify: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_session_verify_total",
			Help: "Session cookie verifications by result.",
		}, []string{"result"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_session_verify_cache_total",
			Help: "Session cookie verifications answered from the verified-token cache (hit) or by checking the signature (miss).",
		}, []string{"cache"}),
		revocations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sekisho_session_revocations_applied_total",
			Help: "Revocations applied to this replica's revocation list.",
		}),
		revocationLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sekisho_session_revocation_lag_seconds",
			Help:    "Time from a revocation being made to this replica applying it (polled revocations only).",
			Buckets: []float64{.05, .1, .25, .5, .75, 1, 2, 5},
		}),
		syncErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sekisho_session_revocation_sync_errors_total",
			Help: "Failed polls of the store for revocations.",
		}),
		keysCreated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_session_keys_created_total",
			Help: "Signing keys created by this replica, by use.",
		}, []string{"use"}),
	}
	m.verifyOK = m.verify.WithLabelValues("ok")
	m.verifyInvalid = m.verify.WithLabelValues("invalid")
	m.verifyExpired = m.verify.WithLabelValues("expired")
	m.verifyRevoked = m.verify.WithLabelValues("revoked")
	m.verifyDevice = m.verify.WithLabelValues("device_mismatch")
	m.cacheHits = m.cache.WithLabelValues("hit")
	m.cacheMisses = m.cache.WithLabelValues("miss")
	return m
}

func (m metrics) register(r prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.verify, m.cache, m.revocations, m.revocationLag, m.syncErrors, m.keysCreated} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}
