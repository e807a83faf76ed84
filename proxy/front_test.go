package proxy

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sekisho/sekisho/internal/testlog"
)

// fastCounts reads sekisho_fast_path_requests_total and
// sekisho_fast_path_handovers_total of the fixture's gateway.
func (f *listenFixture) fastCounts() (fast, handovers int64) {
	m := newParkMetrics(f.gw.metrics.Registry())
	return int64(testutil.ToFloat64(m.fast)), int64(testutil.ToFloat64(m.handovers))
}

// TestFrontKeepAlive: keep-alive GETs, plain and over TLS with a device
// certificate, are all served by the fast path: right answers, a new
// request id each, and over TLS the record names the device and TLS.
func TestFrontKeepAlive(t *testing.T) {
	f := newListenFixture(t, "  fast_path: true")
	dev := f.device(t, "PC-0042")
	for _, overTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[overTLS], func(t *testing.T) {
			c := f.dialRaw(t, overTLS, &dev)
			fast0, hand0 := f.fastCounts()
			ids := map[string]bool{}
			for i := 0; i < 5; i++ {
				path := fmt.Sprintf("/k/%d", i)
				r := c.do("GET "+path+" HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n", false)
				if r.status != 200 || r.body != "upstream path="+path {
					t.Fatalf("request %d: %d %q", i, r.status, r.body)
				}
				id := r.header.Get("X-Request-Id")
				if id == "" || ids[id] {
					t.Fatalf("request %d: request id %q repeated or missing", i, id)
				}
				ids[id] = true
				e := f.audit.find(id)
				if len(e) != 1 || e[0].Decision != "allow" || e[0].Status != 200 {
					t.Errorf("request %d: records %+v, want one allow 200", i, e)
				}
				if overTLS {
					if r.header.Get("Strict-Transport-Security") == "" {
						t.Errorf("request %d: no HSTS: Request.TLS lost on the fast path", i)
					}
					if len(e) != 1 || e[0].Info.Device != "PC-0042" || !e[0].Info.TLS {
						t.Errorf("request %d: records %+v, want one with device PC-0042 over TLS", i, e)
					}
				}
			}
			fast, hand := f.fastCounts()
			if fast-fast0 != 5 || hand-hand0 != 0 {
				t.Errorf("fast path served %d, handed over %d; want 5 and 0", fast-fast0, hand-hand0)
			}
		})
	}
}

// diffResponse is what a client received for one request, less what
// differs by nature between two servers (Date, X-Request-Id).
type diffResponse struct {
	Status        int // -1: no response (the connection ended)
	Header        http.Header
	HasDate       bool
	HasRequestID  bool
	Body          string
	ContentLength int64
	Chunked       bool
	Close         bool
	Audit         []string // decision, status, rule and reasons of each record
}

// diffOutcome is the whole exchange of one differential case.
type diffOutcome struct {
	Responses []diffResponse
	Upstream  []string // method and target of each request the upstream saw
	// Usable: a following plain GET on the same connection is answered 200.
	Usable bool
}

// rawExchange sends raw on a new plain connection, reads n responses (the
// first to a HEAD if head), then tries one plain GET more. fast and
// handovers count the fast path's work before that GET.
func rawExchange(t *testing.T, f *listenFixture, overTLS bool, raw string, n int, head bool) (out diffOutcome, fast, handovers int64) {
	t.Helper()
	fast0, hand0 := f.fastCounts()
	f.seen.mu.Lock()
	seen0 := len(f.seen.reqs)
	f.seen.mu.Unlock()
	c := f.dialRaw(t, overTLS, nil)
	defer c.conn.Close()
	c.conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c.conn, raw); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		var req *http.Request
		if head && i == 0 {
			req = &http.Request{Method: "HEAD"}
		}
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			out.Responses = append(out.Responses, diffResponse{Status: -1})
			break
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if err != nil {
			body += " <cut short>"
		}
		id := resp.Header.Get("X-Request-Id")
		d := diffResponse{Status: resp.StatusCode, Header: resp.Header.Clone(), Body: body,
			HasDate: resp.Header.Get("Date") != "", HasRequestID: id != "",
			ContentLength: resp.ContentLength, Chunked: slices.Contains(resp.TransferEncoding, "chunked"), Close: resp.Close}
		d.Header.Del("Date")
		d.Header.Del("X-Request-Id")
		if id != "" {
			// Error pages name the request id.
			d.Body = strings.ReplaceAll(d.Body, id, "<request id>")
			for _, e := range f.audit.find(id) {
				d.Audit = append(d.Audit, fmt.Sprintf("%s %d %s %v", e.Decision, e.Status, e.Rule, e.Reasons))
			}
		}
		out.Responses = append(out.Responses, d)
	}
	f.seen.mu.Lock()
	for _, r := range f.seen.reqs[seen0:] {
		out.Upstream = append(out.Upstream, r.Method+" "+r.URL.RequestURI())
	}
	f.seen.mu.Unlock()
	fast1, hand1 := f.fastCounts()
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, getOK); err == nil {
		resp, err := http.ReadResponse(c.br, nil)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			out.Usable = err == nil && resp.StatusCode == 200
		}
	}
	return out, fast1 - fast0, hand1 - hand0
}

const diffHost = "Host: web.example.lg.jp\r\n"

// diffCase is one raw request of the differential tests.
type diffCase struct {
	name string
	raw  string
	n    int  // responses expected
	head bool // the first request is a HEAD
	// On the fast-path gateway: requests served there, connections
	// handed to net/http.
	fast, handovers int64
}

// frontDiffCases are requests sent to both gateways at the default
// max_header_bytes.
func frontDiffCases() []diffCase {
	const host = diffHost
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\n" + host + "\r\n" }
	return []diffCase{
		{"plain GET", get("/a"), 1, false, 1, 0},
		{"streamed answer", get("/stream"), 1, false, 1, 0},
		{"204 answer", get("/empty"), 1, false, 1, 0},
		{"403 from upstream", get("/status/403"), 1, false, 1, 0},
		{"answer that looks like a refusal", get("/forged"), 1, false, 1, 0},
		{"unknown host", "GET /a HTTP/1.1\r\nHost: unknown.example.lg.jp\r\n\r\n", 1, false, 1, 0},
		{"query and encoded path", get("/a%2Fb/c?x=1&y=%zz"), 1, false, 1, 0},
		{"dot segments", get("/a/../b/./c"), 1, false, 1, 0},
		{"POST with a body", "POST /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello", 1, false, 0, 1},
		{"GET with Content-Length 0", "GET /a HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n", 1, false, 0, 1},
		{"GET with a body", "GET /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello", 1, false, 0, 1},
		{"GET chunked", "GET /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 1, false, 0, 1},
		{"GET with Content-Length and chunked", "GET /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 1, false, 0, 1},
		{"HTTP/1.0", "GET /a HTTP/1.0\r\n" + host + "\r\n", 1, false, 0, 1},
		{"HTTP/1.0 keep-alive", "GET /a HTTP/1.0\r\n" + host + "Connection: keep-alive\r\n\r\n", 1, false, 0, 1},
		{"Connection close", "GET /a HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n", 1, false, 0, 1},
		{"Connection keep-alive, close", "GET /a HTTP/1.1\r\n" + host + "Connection: keep-alive\r\nConnection: close\r\n\r\n", 1, false, 0, 1},
		{"Upgrade websocket", "GET /a HTTP/1.1\r\n" + host + "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 1, false, 0, 1},
		{"Expect 100-continue", "GET /a HTTP/1.1\r\n" + host + "Expect: 100-continue\r\n\r\n", 1, false, 0, 1},
		{"absolute-form", "GET http://web.example.lg.jp/a HTTP/1.1\r\n" + host + "\r\n", 1, false, 0, 1},
		{"absolute-form, other Host", "GET http://web.example.lg.jp/a HTTP/1.1\r\nHost: other.example.lg.jp\r\n\r\n", 1, false, 0, 1},
		{"asterisk", "GET * HTTP/1.1\r\n" + host + "\r\n", 1, false, 0, 1},
		{"two Host headers", "GET /a HTTP/1.1\r\n" + host + "Host: other.example.lg.jp\r\n\r\n", 1, false, 0, 1},
		{"two identical Host headers", "GET /a HTTP/1.1\r\n" + host + host + "\r\n", 1, false, 0, 1},
		{"no Host", "GET /a HTTP/1.1\r\nX-A: b\r\n\r\n", 1, false, 0, 1},
		{"empty Host", "GET /a HTTP/1.1\r\nHost:\r\n\r\n", 1, false, 0, 1},
		{"Host with a bad character", "GET /a HTTP/1.1\r\nHost: web.exa<mple.lg.jp\r\n\r\n", 1, false, 0, 1},
		{"host in lower case", "GET /a HTTP/1.1\r\nhost: web.example.lg.jp\r\n\r\n", 1, false, 1, 0},
		{"bare LF in the request line", "GET /a HTTP/1.1\n" + host + "\r\n", 1, false, 0, 1},
		{"bare CR in a header", "GET /a HTTP/1.1\r\n" + host + "X-A: a\rb\r\n\r\n", 1, false, 0, 1},
		{"obs-fold", "GET /a HTTP/1.1\r\n" + host + "X-A: a\r\n b\r\n\r\n", 1, false, 1, 0},
		{"obs-fold after Host", "GET /a HTTP/1.1\r\n" + host + " evil.example\r\n\r\n", 1, false, 0, 1},
		{"space before the colon", "GET /a HTTP/1.1\r\n" + host + "X-A : b\r\n\r\n", 1, false, 0, 1},
		{"space before the Host colon", "GET /a HTTP/1.1\r\nHost : web.example.lg.jp\r\n\r\n", 1, false, 0, 1},
		{"NUL in a header value", "GET /a HTTP/1.1\r\n" + host + "X-A: a\x00b\r\n\r\n", 1, false, 0, 1},
		{"9 KiB head", "GET /a HTTP/1.1\r\n" + host + bigHeader(9<<10) + "\r\n", 1, false, 0, 1},
		{"leading CRLF", "\r\n" + get("/a"), 1, false, 0, 1},
		{"HEAD", "HEAD /a HTTP/1.1\r\n" + host + "\r\n", 1, true, 0, 1},
		{"lower-case get", "get /a HTTP/1.1\r\n" + host + "\r\n", 1, false, 0, 1},
		{"invalid method token", "G(T /a HTTP/1.1\r\n" + host + "\r\n", 1, false, 0, 1},
		{"bad escape in target", get("/a%zz"), 1, false, 0, 1},
		{"HTTP/1.2", "GET /a HTTP/1.2\r\n" + host + "\r\n", 1, false, 0, 1},
		{"pipelined GET and POST", get("/p/1") + "POST /p/2 HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello", 2, false, 1, 1},
		{"two pipelined GETs", get("/p/1") + get("/p/2"), 2, false, 2, 0},
		{"60 pipelined GETs over the read buffer", pipelined(60, ""), 60, false, 60, 0},
		{"24 pipelined GETs, a POST across the read buffer's end, a GET", pipelined(24,
			"POST /post HTTP/1.1\r\n"+host+bigHeader(300)+"Content-Length: 5\r\n\r\nhello"+get("/last")), 26, false, 24, 1},
	}
}

// pipelined is n GETs of 335 or 336 bytes each, then tail (24 of them
// end at 8,054 bytes, so that a 376-byte POST head crosses the 8 KiB
// buffer).
func pipelined(n int, tail string) string {
	var b strings.Builder

	for i := range n {
		fmt.Fprintf(&b, "GET /p/%d HTTP/1.1\r\n%s%s\r\n", i, diffHost, bigHeader(280))
	}
	return b.String() + tail
}

// frontSmallHeadCases are sent with max_header_bytes: 1024; net/http
// allows 4 KiB more than the setting and refuses with 431 beyond.
func frontSmallHeadCases() []diffCase {
	return []diffCase{
		{"head over max_header_bytes, within net/http's slack", "GET /a HTTP/1.1\r\n" + diffHost + bigHeader(2<<10) + "\r\n", 1, false, 0, 1},
		{"head over max_header_bytes", "GET /a HTTP/1.1\r\n" + diffHost + bigHeader(8<<10) + "\r\n", 1, false, 0, 1},
		{"small GET", "GET /a HTTP/1.1\r\n" + diffHost + "\r\n", 1, false, 1, 0},
	}
}

// frontBareLFCases are heads whose lines end in a bare LF, which
// net/http's parser accepts, so that no CRLF CRLF ever ends them.
func frontBareLFCases() []diffCase {
	return []diffCase{
		{"bare LF everywhere", "GET /a HTTP/1.1\nHost: web.example.lg.jp\n\n", 1, false, 0, 1},
		{"bare LF ending the head", "GET /a HTTP/1.1\r\n" + diffHost + "\n", 1, false, 0, 1},
		{"CRLF then LF then CRLF", "GET /a HTTP/1.1\r\n" + diffHost + "\n\r\n", 1, false, 0, 1},
	}
}

func bigHeader(n int) string { return "X-Big: " + strings.Repeat("a", n) + "\r\n" }

// runDiff sends each case to a fast-path gateway and to a net/http-only
// one configured with yaml, and compares: the same answers, the same
// audit records, the same requests upstream, the connection equally
// usable afterwards, and the fast path's counters as the case says.
func runDiff(t *testing.T, yaml string, overTLS bool, cases []diffCase) {
	fastGW := newListenFixture(t, yaml+"\n  fast_path: true")
	netGW := newListenFixture(t, yaml+"\n  fast_path: false")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, fast, handovers := rawExchange(t, fastGW, overTLS, c.raw, c.n, c.head)
			want, _, _ := rawExchange(t, netGW, overTLS, c.raw, c.n, c.head)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("fast path differs from net/http (-net/http +fast path):\n%s", d)
			}
			if fast != c.fast || handovers != c.handovers {
				t.Errorf("fast path served %d, handed over %d; want %d and %d", fast, handovers, c.fast, c.handovers)
			}
			if len(want.Responses) == 0 || want.Responses[0].Status == -1 {
				t.Errorf("net/http gave no answer: the case tests nothing")
			}
		})
	}
}

// TestFrontDifferential: the fast path serves only the plain GETs, hands
// every other request to net/http, and nothing a client or the audit
// trail sees differs from net/http alone.
func TestFrontDifferential(t *testing.T) {
	runDiff(t, "  read_header_timeout: 3s", false, frontDiffCases())
	t.Run("max_header_bytes 1024", func(t *testing.T) {
		runDiff(t, "  read_header_timeout: 3s\n  max_header_bytes: 1024", false, frontSmallHeadCases())
	})
	t.Run("tls", func(t *testing.T) {
		runDiff(t, "  read_header_timeout: 3s", true, frontDiffCases())
	})
}

// TestFrontBareLFHeadHandedOver: net/http serves a head whose lines end
// in bare LF, so the fast path hands it over at once. (A scanHead that
// waited for a CRLF CRLF that never comes dropped such a connection at
// read_header_timeout without an answer.)
func TestFrontBareLFHeadHandedOver(t *testing.T) {
	runDiff(t, "  read_header_timeout: 3s", false, frontBareLFCases())
}

// TestFrontSlowloris: a head that never completes is dropped after
// server.read_header_timeout, without an answer, as net/http drops it.
func TestFrontSlowloris(t *testing.T) {
	f := newListenFixture(t, "  fast_path: true\n  read_header_timeout: 300ms")
	for _, part := range []string{"G", "GET /a HTTP/1.1\r\nHost: web.example.lg.jp\r\n"} {
		c := f.dialRaw(t, false, nil)
		if _, err := io.WriteString(c.conn, part); err != nil {
			t.Fatal(err)
		}
		if !c.closed(10 * time.Second) {
			t.Errorf("%q: connection still open (or answered) 10 s after a 300 ms header timeout", part)
		}
	}
	// A connection that has been served waits for its next head under
	// the idle timeout, and the clock of the header starts with its first
	// byte.
	c := f.dialRaw(t, false, nil)
	if r := c.do(getOK, false); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if _, err := io.WriteString(c.conn, "GET /a HT"); err != nil {
		t.Fatal(err)
	}
	if !c.closed(10 * time.Second) {
		t.Error("second head: connection still open 10 s after a 300 ms header timeout")
	}
}

// TestFrontIdleTimeout: a connection idle after a fast-path answer is
// closed after server.idle_timeout.
func TestFrontIdleTimeout(t *testing.T) {
	f := newListenFixture(t, "  fast_path: true\n  idle_timeout: 300ms")
	pc := f.dialRaw(t, false, nil)
	fast0, _ := f.fastCounts()
	if r := pc.do(getOK, false); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if fast, _ := f.fastCounts(); fast-fast0 != 1 {
		t.Fatalf("fast path served %d requests, want 1", fast-fast0)
	}
	if !pc.closed(10 * time.Second) {
		t.Fatal("idle connection not closed after the idle timeout")
	}
	waitParked(t, f, 0)
}

// TestFrontShutdown: shutdown closes the connections idle on the fast
// path and returns; a request in flight finishes, answered with
// Connection: close.
func TestFrontShutdown(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		f := newListenFixture(t, "  fast_path: true")
		pcs := []*rawConn{f.dialRaw(t, false, nil), f.dialRaw(t, true, nil)}
		for _, pc := range pcs {
			if r := pc.do(getOK, false); r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
		}
		waitParked(t, f, 2)
		start := time.Now()
		if err := f.stop(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("shutdown took %v with idle connections", d)
		}
		for i, pc := range pcs {
			if !pc.closed(5 * time.Second) {
				t.Errorf("connection %d open after shutdown", i)
			}
		}
		waitParked(t, f, 0)
	})
	t.Run("in flight", func(t *testing.T) {
		f := newListenFixture(t, "  fast_path: true")
		fast0, _ := f.fastCounts()
		pc := f.dialRaw(t, false, nil)
		pc.conn.SetDeadline(time.Now().Add(20 * time.Second))
		f.sendHeld(t, pc, "/hold")
		if fast, _ := f.fastCounts(); fast-fast0 != 1 {
			t.Fatalf("fast path served %d requests, want 1", fast-fast0)
		}
		stopped := make(chan error, 1)
		go func() { stopped <- f.stop() }()
		p := f.srv.parkers[1]
		for deadline := time.Now().Add(10 * time.Second); !p.isClosed(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("shutdown did not begin")
			}
		}
		close(f.gate.release)
		resp := readHeld(t, pc.br, "request in flight during shutdown")
		if !resp.Close { // http.ReadResponse moves Connection: close to resp.Close
			t.Errorf("in flight during shutdown: answered without Connection: close (%v)", resp.Header)
		}
		select {
		case err := <-stopped:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("shutdown did not return")
		}
		if !pc.closed(5 * time.Second) {
			t.Error("connection open after shutdown")
		}
	})
}

// TestFrontClientGone: a client that goes away while its fast-path
// request waits for a slow upstream has the request's context cancelled
// (after about watchAfter), so the upstream request ends too.
func TestFrontClientGone(t *testing.T) {
	f := newListenFixture(t, "  fast_path: true")
	fast0, _ := f.fastCounts()
	pc := f.dialRaw(t, false, nil)
	f.sendHeld(t, pc, "/slow")
	if fast, _ := f.fastCounts(); fast-fast0 != 1 {
		t.Fatalf("fast path served %d requests, want 1", fast-fast0)
	}
	pc.conn.Close()
	select {
	case d := <-f.gate.cancelled:
		if d < 0 || d > 8*time.Second {
			t.Errorf("upstream request's context ended after %v, want within 8 s (-1: never)", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("upstream handler never returned")
	}
}

// TestFrontPipelinedDuringLongRequest: a request served for longer than
// watchAfter is watched for the client going away; a next request the
// client sends meanwhile is not lost to that watch but answered after
// the first, in order, plain and over TLS.
func TestFrontPipelinedDuringLongRequest(t *testing.T) {
	f := newListenFixture(t, "  fast_path: true")
	for _, overTLS := range []bool{false, true} {
		pc := f.dialRaw(t, overTLS, nil)
		pc.conn.SetDeadline(time.Now().Add(20 * time.Second))
		f.sendHeld(t, pc, "/hold")
		// Past watchAfter, the watch is reading the connection.
		time.Sleep(watchAfter + 500*time.Millisecond)
		if _, err := io.WriteString(pc.conn, "GET /after HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		f.gate.release <- struct{}{}
		for i, want := range []string{"held", "upstream path=/after"} {
			resp, err := http.ReadResponse(pc.br, nil)
			if err != nil {
				t.Fatalf("tls=%t response %d: %v", overTLS, i+1, err)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 || string(b) != want {
				t.Errorf("tls=%t response %d: %d %q %v, want %q", overTLS, i+1, resp.StatusCode, b, err, want)
			}
		}
		if r := pc.do(getOK, false); r.status != 200 {
			t.Errorf("tls=%t: next request: status %d", overTLS, r.status)
		}
	}
}

// TestFrontLongRequestAfterWait: a request that arrives while its
// connection waits for it (frontLinger's read deadline, which serve
// leaves set) and is then served for longer than watchAfter and that
// deadline is not ended by the watch: the client gets its answer and the
// connection serves the next request.
func TestFrontLongRequestAfterWait(t *testing.T) {
	f := newListenFixture(t, "  fast_path: true")
	pc := f.dialRaw(t, false, nil)
	pc.conn.SetDeadline(time.Now().Add(20 * time.Second))
	if r := pc.do(getOK, false); r.status != 200 {
		t.Fatalf("first request: status %d", r.status)
	}
	// The connection now waits for its next request under frontLinger's
	// deadline: send it within that.
	f.sendHeld(t, pc, "/hold")
	time.Sleep(watchAfter + frontLinger + 500*time.Millisecond)
	select {
	case f.gate.release <- struct{}{}:
	case <-time.After(5 * time.Second):
		t.Fatal("the held request no longer waits upstream: its context ended")
	}
	readHeld(t, pc.br, "held request")
	if r := pc.do(getOK, false); r.status != 200 {
		t.Errorf("next request: status %d", r.status)
	}
}

// TestFrontUpstreamCutOff: an upstream answer cut off midway never
// reaches the client as a complete response, the connection is not used
// again, and the answer is audited with reason response_aborted, on the
// fast path as under net/http. (httputil.ReverseProxy aborts with
// http.ErrAbortHandler only when the request context carries
// http.ServerContextKey; without it, the fast path once ended such an
// answer with a last chunk, so that the truncated body looked whole.)
func TestFrontUpstreamCutOff(t *testing.T) {
	for _, fastPath := range []bool{true, false} {
		f := newListenFixture(t, map[bool]string{true: "  fast_path: true", false: "  fast_path: false"}[fastPath])
		for _, path := range []string{"/cut", "/cutchunked"} {
			out, fast, _ := rawExchange(t, f, false, "GET "+path+" HTTP/1.1\r\n"+diffHost+"\r\n", 1, false)
			if fastPath && fast != 1 {
				t.Errorf("fast path %t %s: served %d requests on the fast path, want 1", fastPath, path, fast)
			}
			r := out.Responses[0]
			if r.Status != -1 && !strings.HasSuffix(r.Body, "<cut short>") {
				t.Errorf("fast path %t %s: the client read a complete %d answer %q", fastPath, path, r.Status, r.Body)
			}
			if out.Usable {
				t.Errorf("fast path %t %s: the connection served another request after a cut-off answer", fastPath, path)
			}
			// The cut-off answer is audited, and says so.
			deadline := time.Now().Add(5 * time.Second)
			for {
				var found []Entry
				for _, e := range f.audit.all() {
					if e.Info.Path == path && slices.Contains(e.Reasons, ReasonResponseAborted) {
						found = append(found, e)
					}
				}
				if len(found) == 1 && found[0].Status == 200 && found[0].Bytes == 5 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("fast path %t %s: records %+v, want one with status 200, 5 bytes and reason %s",
						fastPath, path, found, ReasonResponseAborted)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

// TestFrontPanic: a handler's panic on the fast path closes the
// connection (after whatever the handler had flushed) and is logged,
// except http.ErrAbortHandler, as in net/http.
func TestFrontPanic(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			w.Header().Set("X-Before", "1")
			io.WriteString(w, "not sent")
			panic("boom")
		case "/abort":
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		default:
			io.WriteString(w, "ok")
		}
	})
	var logs testlog.Buffer
	p := newParker(1, time.Minute, newParkMetrics(prometheus.NewRegistry()))
	p.front = newFront(h, &http.Server{MaxHeaderBytes: 1 << 20, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(&logs, "", 0)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer p.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.adopt(&trackedConn{Conn: c})
		}
	}()
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}

	c, br := dial()
	io.WriteString(c, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
	io.WriteString(c, "GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after a panic: read %q, %v; want the connection closed with nothing sent", rest, err)
	}
	if !strings.Contains(logs.String(), "panic serving") || !strings.Contains(logs.String(), "boom") {
		t.Errorf("panic not logged: %q", logs.String())
	}

	c, br = dial()
	io.WriteString(c, "GET /abort HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if string(b) != "partial" || err == nil {
		t.Errorf("aborted response: body %q, %v; want the flushed part, then a cut", b, err)
	}
	if n := strings.Count(logs.String(), "panic serving"); n != 1 {
		t.Errorf("%d panics logged, want 1 (ErrAbortHandler is not logged)", n)
	}
}

// TestFrontConcurrent: 16 keep-alive clients × 40 GETs on each listener,
// all on the fast path, each answer the one its request asked for.
func TestFrontConcurrent(t *testing.T) {
	f := newListenFixture(t, "  fast_path: true")
	for _, base := range []string{"http://" + f.http, "https://" + f.https} {
		fast0, hand0 := f.fastCounts()
		f.concurrentGETs(t, base, 16, 40)
		fast, hand := f.fastCounts()
		if fast-fast0 != 640 || hand-hand0 != 0 {
			t.Errorf("%s: fast path served %d, handed over %d; want 640 and 0", base, fast-fast0, hand-hand0)
		}
	}
}

// TestFrontHandoverBytesIntact: a head the fast path parsed and then
// hands to net/http reaches net/http exactly as the client sent it.
// (http.ReadRequest canonicalizes header names in place, in the
// bufio.Reader's buffer; giving that buffer back once made net/http read
// "Sec-Websocket-Key" where the client sent "Sec-WebSocket-Key".)
func TestFrontHandoverBytesIntact(t *testing.T) {
	fr := &front{maxHeaderBytes: http.DefaultMaxHeaderBytes}
	m := newParkMetrics(prometheus.NewRegistry())
	for _, raw := range []string{
		"GET /a HTTP/1.1\r\nHost: web.example.lg.jp\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
		"POST /a HTTP/1.1\r\nhost: web.example.lg.jp\r\ncontent-length: 5\r\nx-lower_case: 1\r\n\r\nhello",
	} {
		c1, c2 := net.Pipe()
		c2.Close()
		tc := &trackedConn{Conn: c1, pending: []byte(raw)}
		br := bufio.NewReaderSize(tc, frontReadSize)
		n, err := scanHead(br, frontReadSize)
		if err != nil {
			t.Fatalf("%q: scanHead: %v", raw, err)
		}
		if _, ok := fr.parse(tc, &frontState{br: br}, n); ok {
			t.Fatalf("%q: taken by the fast path", raw)
		}
		if got := handOverBytes(fr, m, tc, br); string(got) != raw {
			t.Errorf("net/http reads %q, the client sent %q", got, raw)
		}
		c1.Close()
	}
}

// readHeld reads the answer to a /hold request from br and checks that it
// is 200 "held"; what names the request in failures.
func readHeld(t *testing.T, br *bufio.Reader, what string) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || string(b) != "held" {
		t.Errorf("%s: %d %q %v, want 200 \"held\"", what, resp.StatusCode, b, err)
	}
	return resp
}

// sendHeld sends a GET for path (an upstream case that holds its answer:
// /hold, /slow) on pc and waits until the upstream has it.
func (f *listenFixture) sendHeld(t *testing.T, pc *rawConn, path string) {
	t.Helper()
	if _, err := io.WriteString(pc.conn, "GET "+path+" HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.gate.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the upstream")
	}
}
