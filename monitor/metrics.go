package monitor

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	alerts        *prometheus.CounterVec
	dropped       prometheus.Counter
	notifications *prometheus.CounterVec
	responses     *prometheus.CounterVec
}

// newMetrics builds the monitor's series and registers them on reg (nil:
// not registered).
func newMetrics(reg prometheus.Registerer, queueLen func() float64) (*metrics, error) {
	m := &metrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_alerts_total",
			Help: "Alerts raised by the monitor, by rule and severity (repeats grouped into an open alert are not counted).",
		}, []string{"rule", "severity"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sekisho_monitor_dropped_total",
			Help: "Records the monitor dropped because its queue was full (alarm).",
		}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_monitor_notifications_total",
			Help: "Alert notifications by channel and result (ok, error, given_up, dropped, rate_limited).",
		}, []string{"channel", "result"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sekisho_monitor_responses_total",
			Help: "Automatic responses by action and result (ok, error, unavailable).",
		}, []string{"action", "result"}),
	}
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sekisho_monitor_queue_records",
		Help: "Records waiting for the monitor's rules.",
	}, queueLen)
	if reg != nil {
		for _, c := range []prometheus.Collector{m.alerts, m.dropped, m.notifications, m.responses, queue} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering monitor metrics: %w", err)
			}
		}
	}
	return m, nil
}
