package proxy

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkServerRequest measures one request through the gateway's real
// listeners with keep-alive clients: plain HTTP/1.1, HTTP/1.1 over TLS and
// HTTP/2 over TLS. It is the figure to compare when the listeners change
// (connection wrapping, TLS termination); BenchmarkGatewayRequest in
// internal/app calls the handler directly and does not see them.
//
// The plain cases take the fast path (front.go, the default); the
// "net-http" cases are served by net/http's server (fast_path: false),
// and their ratio is what the fast path saves. The "parked" cases, with
// net/http, park every connection after each answer (park_idle_after: 1),
// which a gateway does only once it holds park_idle_after connections:
// their ratio to "net-http" is what parking costs a request in that
// state.
func BenchmarkServerRequest(b *testing.B) {
	f := newListenFixture(b, "")
	fn := newListenFixture(b, "  fast_path: false")
	fp := newListenFixture(b, "  fast_path: false\n  park_idle_after: 1")
	for _, c := range []struct {
		name, base string
		h2         bool
		f          *listenFixture
	}{
		{"plain-h1", "http://" + f.http, false, f},
		{"plain-h1-net-http", "http://" + fn.http, false, fn},
		{"plain-h1-parked", "http://" + fp.http, false, fp},
		{"tls-h1", "https://" + f.https, false, f},
		{"tls-h1-net-http", "https://" + fn.https, false, fn},
		{"tls-h1-parked", "https://" + fp.https, false, fp},
		{"tls-h2", "https://" + f.https, true, f},
	} {
		b.Run(c.name, func(b *testing.B) {
			tr := &http.Transport{TLSClientConfig: c.f.tlsConfig(), ForceAttemptHTTP2: c.h2,
				MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", c.base+"/bench", nil)
					req.Host = "web.example.lg.jp"
					resp, err := cl.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || (c.h2 && resp.ProtoMajor != 2) {
						b.Errorf("%s over %s", resp.Status, resp.Proto)
						return
					}
				}
			})
		})
	}
}
