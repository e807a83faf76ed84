package cluster_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/apptest"
	"github.com/sekisho/sekisho/store/storetest"
)

// TestTLSResumptionAcrossReplicas: a device's TLS session begun on
// replica A resumes on replica B (the replicas share their ticket keys
// through PostgreSQL, authn/ticketkeys), and on B the device certificate
// of the first handshake still identifies the device: the session is
// bound to it, so B answers 200 only if it checked the certificate's
// fingerprint, and B's audit record names the device.
func TestTLSResumptionAcrossReplicas(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	reps := apptest.StartCluster(t, apptest.ClusterOptions{DSN: dsn})
	a, b := reps[0], reps[1]
	cert, fp := a.Device("pc-0042", "suzuki")
	tok := a.Login("suzuki", apptest.UV, 0, "pc-0042", fp)
	cache := tls.NewLRUClientSessionCache(4)
	get := func(r *apptest.Replica) (*http.Response, string) {
		t.Helper()
		tc := &tls.Config{RootCAs: r.CAPool, ServerName: zaimu, Certificates: []tls.Certificate{cert}, ClientSessionCache: cache}
		client := &http.Client{
			Transport:     &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       10 * time.Second,
		}
		req, err := http.NewRequest("GET", "https://"+r.HTTPS+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = zaimu
		req.AddCookie(&http.Cookie{Name: "__Host-sekisho", Value: tok})
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET on replica %s: %v", r.Name, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	resp, body := get(a)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "user=suzuki") {
		t.Fatalf("A: %d %q, want 200 for suzuki", resp.StatusCode, body)
	}
	if resp.TLS.DidResume {
		t.Fatal("the first connection resumed a session: the test proves nothing")
	}
	resp, body = get(b)
	if !resp.TLS.DidResume {
		t.Error("B did not resume the TLS session begun on A")
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "user=suzuki") {
		t.Fatalf("B, resumed: %d %q, want 200 for suzuki (the session is bound to the device certificate)", resp.StatusCode, body)
	}
	recs := b.Records(resp.Header.Get("X-Request-Id"))
	if len(recs) == 0 || recs[0].Device != "pc-0042" || recs[0].CertFP != fp {
		t.Fatalf("B's audit record of the resumed request: %+v, want device pc-0042 with its fingerprint", recs)
	}
}
