package authn

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	ceremonies *prometheus.CounterVec
	limited    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		ceremonies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sekisho", Subsystem: "authn", Name: "ceremonies_total",
			Help: "WebAuthn ceremonies finished, by ceremony (login, register) and result (ok, fail).",
		}, []string{"ceremony", "result"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sekisho", Subsystem: "authn", Name: "rate_limited_total",
			Help: "Ceremony steps refused by a rate limit, by limit (ip, user).",
		}, []string{"limit"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.ceremonies, m.limited} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering authn metrics: %w", err)
			}
		}
	}
	return m, nil
}
