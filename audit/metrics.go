package audit

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	records     prometheus.Counter
	writeErrors prometheus.Counter
	healthy     prometheus.Gauge
	batch       prometheus.Histogram
	fsync       prometheus.Histogram
	sinkSent    *prometheus.CounterVec
	sinkErrors  *prometheus.CounterVec
}

// newMetrics builds the trail's metrics and registers them with reg (nil:
// not registered).
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sekisho_audit_records_total",
			Help: "Audit records written and synced.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sekisho_audit_write_errors_total",
			Help: "Failed writes or syncs of the audit trail (alarm).",
		}),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sekisho_audit_healthy",
			Help: "1 while the audit trail can be written, 0 while it cannot (alarm).",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sekisho_audit_batch_records",
			Help:    "Records per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sekisho_audit_fsync_seconds",
			Help:    "Time of one fsync of the audit trail.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
		}),
		sinkSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_audit_sink_records_total",
			Help: "Audit records sent to a sink.",
		}, []string{"sink"}),
		sinkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_audit_sink_errors_total",
			Help: "Connection or send errors of a sink.",
		}, []string{"sink"}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.writeErrors, m.healthy, m.batch, m.fsync, m.sinkSent, m.sinkErrors)
	}
	return m
}
