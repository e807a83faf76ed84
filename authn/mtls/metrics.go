package mtls

import (
	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics exposes, on reg, when the loaded CRL must be replaced
// and when the first device CA expires, so that monitoring can warn before
// either stops every device (examples/prometheus):
//
//   - sekisho_device_crl_next_update_timestamp_seconds: the earliest
//     nextUpdate of the CRLs in force (0 without a CRL);
//   - sekisho_device_crl_revoked: certificates listed in them;
//   - sekisho_device_ca_not_after_timestamp_seconds: the earliest NotAfter
//     of the configured client CAs.
//
// The values are read at scrape time, so a CRL reload shows at once.
func (v *Verifier) RegisterMetrics(reg prometheus.Registerer) error {
	next := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sekisho_device_crl_next_update_timestamp_seconds",
		Help: "Earliest nextUpdate of the device CRLs in force (Unix seconds; 0 without a CRL).",
	}, func() float64 {
		if s := v.crl.Load(); s != nil && !s.nextUpdate.IsZero() {
			return float64(s.nextUpdate.Unix())
		}
		return 0
	})
	revoked := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sekisho_device_crl_revoked",
		Help: "Device certificates listed in the CRLs in force.",
	}, func() float64 {
		if s := v.crl.Load(); s != nil {
			return float64(s.count)
		}
		return 0
	})
	caNotAfter := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sekisho_device_ca_not_after_timestamp_seconds",
		Help: "Earliest NotAfter of the configured device (client) CAs (Unix seconds).",
	}, func() float64 {
		var first int64
		for _, c := range v.anchors {
			if t := c.NotAfter.Unix(); first == 0 || t < first {
				first = t
			}
		}
		return float64(first)
	})
	for _, c := range []prometheus.Collector{next, revoked, caNotAfter} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
