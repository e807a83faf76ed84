//go:build unix

package h1transport

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/testnet"
)

// The benchmarks compare Transport with an http.Transport configured as
// the gateway's (proxy/forward.go). Client, proxy and upstream share the
// process, so B/op and allocs/op include the servers' share, the same for
// both; cpu-ns/op is the whole process's user+system CPU per request.

var payload = strings.Repeat("x", 1024)

func upstream(b *testing.B) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
		io.WriteString(w, payload)
	}))
	b.Cleanup(s.Close)
	return s
}

func gatewayTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
}

var impls = []struct {
	name string
	new  func() http.RoundTripper
}{
	{"h1transport", func() http.RoundTripper {
		return New(Options{ResponseHeaderTimeout: 30 * time.Second, Fallback: gatewayTransport()})
	}},
	{"http.Transport", func() http.RoundTripper { return gatewayTransport() }},
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run drives rt with body-less GETs from parallel goroutines, each with
// a cancelable context like a server request's, reading every body.
func run(b *testing.B, rt http.RoundTripper, target string) {
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	cpu := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for pb.Next() {
			req, _ := http.NewRequestWithContext(ctx, "GET", target, nil)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				b.Error(err)
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != int64(len(payload)) {
				b.Errorf("body: %d bytes, %v", n, err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
	if ci, ok := rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	up := upstream(b)
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) { run(b, impl.new(), up.URL+"/bench") })
	}
}

// bufPool is a ReverseProxy BufferPool of 32 KiB arrays, as the gateway's.
type bufPool struct{ p sync.Pool }

func (bp *bufPool) Get() []byte {
	if v, ok := bp.p.Get().(*[32 << 10]byte); ok {
		return v[:]
	}
	return new([32 << 10]byte)[:]
}

func (bp *bufPool) Put(v []byte) {
	if len(v) == 32<<10 {
		bp.p.Put((*[32 << 10]byte)(v))
	}
}

func BenchmarkReverseProxy(b *testing.B) {
	up := upstream(b)
	target, _ := url.Parse(up.URL)
	pool := &bufPool{}
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			rt := impl.new()
			rp := &httputil.ReverseProxy{
				Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
				Transport:  rt,
				BufferPool: pool,
			}
			front := httptest.NewServer(rp)
			defer front.Close()
			client := gatewayTransport()
			defer client.CloseIdleConnections()
			run(b, client, front.URL+"/bench")
			if ci, ok := rt.(interface{ CloseIdleConnections() }); ok {
				ci.CloseIdleConnections()
			}
		})
	}
}

// BenchmarkUsable is the reuse check every pooled connection passes before
// it carries a request (usable: a MSG_PEEK that must find nothing), on an
// idle loopback connection: the one system call per request nginx does not
// make (docs/performance.md, session 10).
func BenchmarkUsable(b *testing.B) {
	nc, _ := testnet.TCPPair(b)
	c := &conn{raw: nc}
	newPeeker(c)
	if c.peek == nil {
		b.Fatal("no peeker for a TCP connection")
	}
	b.ReportAllocs()
	for b.Loop() {
		if !usable(c) {
			b.Fatal("an idle connection was found unusable")
		}
	}
}
