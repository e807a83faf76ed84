package mtls

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterMetrics(t *testing.T) {
	v := &Verifier{}
	v.crl.Store(&crlSet{count: 2})
	reg := prometheus.NewRegistry()
	if err := v.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP sekisho_device_crl_revoked Device certificates listed in the CRLs in force.
# TYPE sekisho_device_crl_revoked gauge
sekisho_device_crl_revoked 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sekisho_device_crl_revoked"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 3 {
		t.Fatalf("gathered %d series, %v; want 3", n, err)
	}
}
