package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// exchange writes raw bytes on a new connection to the plain listener
// (cert == nil and !overTLS) or the HTTPS listener (HTTP/1.1 by ALPN, with
// a client certificate if given) and reads n responses.
func (f *listenFixture) exchange(t *testing.T, overTLS bool, cert *tls.Certificate, raw string, n int) []rawResponse {
	t.Helper()
	c := f.dialRaw(t, overTLS, cert)
	defer c.conn.Close()
	c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.conn, raw); err != nil {
		t.Fatal(err)
	}
	var out []rawResponse
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, rawResponse{status: resp.StatusCode, header: resp.Header, body: string(b)})
	}
	return out
}

type rawResponse struct {
	status int
	header http.Header
	body   string
}

// netHTTPEntries returns the refusal records written so far.
func (m *memRecorder) netHTTPEntries() []Entry {
	var out []Entry
	for _, e := range m.all() {
		if e.Rule == ruleNetHTTP {
			out = append(out, e)
		}
	}
	return out
}

// TestNetHTTPRefusalsAudited: every request net/http refuses before the
// gateway runs is answered with an X-Request-Id and has exactly one audit
// record under that id, on the plain listener and over TLS, where the
// record names the device of the client certificate.
func TestNetHTTPRefusalsAudited(t *testing.T) {
	eachParkMode(t, "  max_header_bytes: 8192", func(t *testing.T, f *listenFixture) {
		dev := f.device(t, "PC-0042")
		const host = "Host: web.example.lg.jp\r\n"
		cases := []struct {
			name, raw string
			status    int
			reason    string
			text      string // net/http's text in the record
		}{
			{"bad escape in target", "GET /admin%zz HTTP/1.1\r\n" + host + "\r\n", 400, ReasonMalformedRequest, "400 Bad Request"},
			{"malformed header line", "GET / HTTP/1.1\r\n" + host + "X Bad Header: 1\r\n\r\n", 400, ReasonMalformedRequest, "400 Bad Request: invalid header name"},
			{"oversized header", "GET / HTTP/1.1\r\n" + host + "X-Big: " + strings.Repeat("a", 32<<10) + "\r\n\r\n", 431, ReasonHeaderTooLarge, "431 Request Header Fields Too Large"},
			{"duplicate Host", "GET / HTTP/1.1\r\n" + host + "Host: other.example.lg.jp\r\n\r\n", 400, ReasonMalformedRequest, "400 Bad Request"},
			{"malformed Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, ReasonMalformedRequest, "400 Bad Request: malformed Host header"},
			{"unsupported Transfer-Encoding", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n", 501, ReasonUnsupportedTransferEncoding, "501 Not Implemented: Unsupported transfer encoding"},
			{"unknown Expect", "GET / HTTP/1.1\r\n" + host + "Expect: teapot\r\n\r\n", 417, ReasonExpectationFailed, "417 Expectation Failed"},
		}
		for _, overTLS := range []bool{false, true} {
			for _, c := range cases {
				name := "plain/" + c.name
				if overTLS {
					name = "tls/" + c.name
				}
				t.Run(name, func(t *testing.T) {
					before := len(f.audit.netHTTPEntries())
					seenBefore := f.seen.count()
					var cert *tls.Certificate
					if overTLS {
						cert = &dev
					}
					r := f.exchange(t, overTLS, cert, c.raw, 1)[0]
					if r.status != c.status {
						t.Fatalf("status %d, want %d (%q)", r.status, c.status, r.body)
					}
					id := r.header.Get("X-Request-Id")
					if len(id) != 16 || len(r.header.Values("X-Request-Id")) != 1 {
						t.Fatalf("X-Request-Id %q", r.header.Values("X-Request-Id"))
					}
					entries := f.audit.find(id)
					if len(entries) != 1 {
						t.Fatalf("%d audit records for %s, want 1", len(entries), id)
					}
					e := entries[0]
					if e.Event != "access" || e.Decision != "error" || !e.Enforced || e.Rule != ruleNetHTTP || e.Status != c.status {
						t.Errorf("record %+v", e)
					}
					if len(e.Reasons) != 2 || e.Reasons[0] != c.reason || e.Reasons[1] != c.text {
						t.Errorf("reasons %q, want [%s %q]", e.Reasons, c.reason, c.text)
					}
					if e.Info.IP.String() != "127.0.0.1" || e.Info.Zone != "chonai" || e.Info.TLS != overTLS {
						t.Errorf("source %s zone %s tls %t", e.Info.IP, e.Info.Zone, e.Info.TLS)
					}
					if overTLS && (e.Info.Device != "PC-0042" || len(e.Info.CertFP) != 64) {
						t.Errorf("device %q fp %q, want the client certificate's", e.Info.Device, e.Info.CertFP)
					}
					if got := len(f.audit.netHTTPEntries()) - before; got != 1 {
						t.Errorf("%d refusal records, want 1", got)
					}
					if f.seen.count() != seenBefore {
						t.Error("refused request reached the upstream")
					}
				})
			}
		}
		if v := testutil.ToFloat64(f.srv.rec.refused.WithLabelValues("400")); v != 2*4 {
			t.Errorf("sekisho_refused_by_net_http_total{code=400} = %v, want 8", v)
		}
		if v := testutil.ToFloat64(f.gw.metrics.requests.WithLabelValues("-", "431")); v != 2 {
			t.Errorf("sekisho_requests_total{route=-,code=431} = %v, want 2", v)
		}
	})
}

// TestPipelinedRefusal: on one keep-alive connection, two requests the
// gateway answers are followed by a malformed one. Each answered request
// keeps its own single request id; only the third is a net/http refusal.
// The gateway's answers include a 404 to a POST whose body nobody read
// and an upstream's 403, whose status lines net/http writes after the
// handler has returned.
func TestPipelinedRefusal(t *testing.T) {
	eachParkMode(t, "", func(t *testing.T, f *listenFixture) {
		const host = "Host: web.example.lg.jp\r\n"
		for _, overTLS := range []bool{false, true} {
			name := "plain"
			if overTLS {
				name = "tls"
			}
			t.Run(name, func(t *testing.T) {
				before := len(f.audit.netHTTPEntries())
				raw := "POST /x HTTP/1.1\r\nHost: unknown.example.lg.jp\r\nContent-Length: 5\r\n\r\nhello" +
					"GET /status/403 HTTP/1.1\r\n" + host + "\r\n" +
					"GET /ok HTTP/1.1\r\n" + host + "\r\n" +
					"GET /bad%zz HTTP/1.1\r\n" + host + "\r\n"
				rs := f.exchange(t, overTLS, nil, raw, 4)
				for i, want := range []int{404, 403, 200, 400} {
					if rs[i].status != want {
						t.Fatalf("response %d: status %d, want %d", i+1, rs[i].status, want)
					}
					if n := len(rs[i].header.Values("X-Request-Id")); n != 1 {
						t.Fatalf("response %d has %d X-Request-Id headers", i+1, n)
					}
				}
				if rs[1].body != "upstream says no" {
					t.Errorf("403 body %q", rs[1].body)
				}
				for i := 0; i < 3; i++ {
					for _, e := range f.audit.find(rs[i].header.Get("X-Request-Id")) {
						if e.Rule == ruleNetHTTP {
							t.Errorf("response %d (status %d) recorded as a net/http refusal", i+1, rs[i].status)
						}
					}
				}
				e := f.audit.find(rs[3].header.Get("X-Request-Id"))
				if len(e) != 1 || e[0].Rule != ruleNetHTTP || e[0].Status != 400 {
					t.Fatalf("malformed request's records: %+v", e)
				}
				if got := len(f.audit.netHTTPEntries()) - before; got != 1 {
					t.Errorf("%d refusal records, want 1", got)
				}
			})
		}
	})
}

// TestHandlerResponsesNeverRewritten: a response body that is, byte for
// byte, net/http's refusal, forwarded from the upstream, reaches the
// client unchanged over every protocol and is not recorded as a refusal.
func TestHandlerResponsesNeverRewritten(t *testing.T) {
	eachParkMode(t, "", func(t *testing.T, f *listenFixture) {
		for _, c := range []struct {
			name, base string
			h2         bool
		}{
			{"plain-h1", "http://" + f.http, false},
			{"tls-h1", "https://" + f.https, false},
			{"tls-h2", "https://" + f.https, true},
		} {
			t.Run(c.name, func(t *testing.T) {
				tr := &http.Transport{TLSClientConfig: f.tlsConfig(), ForceAttemptHTTP2: c.h2}
				defer tr.CloseIdleConnections()
				cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
				for i := 0; i < 3; i++ { // keep-alive: the same connection again
					req, _ := http.NewRequest("GET", c.base+"/forged", nil)
					req.Host = "web.example.lg.jp"
					resp, err := cl.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(b) != forgedRefusal || (resp.ProtoMajor == 2) != c.h2 {
						t.Fatalf("%s %s: %q", resp.Proto, resp.Status, b)
					}
				}
			})
		}
		if n := len(f.audit.netHTTPEntries()); n != 0 {
			t.Errorf("%d refusal records for answered requests", n)
		}
	})
}

// TestTLSConnectionState: Request.TLS, and with it the device certificate,
// reaches the gateway over HTTP/1.1 (through the tracked connection) and
// over HTTP/2 (the *tls.Conn itself).
func TestTLSConnectionState(t *testing.T) {
	eachParkMode(t, "", func(t *testing.T, f *listenFixture) {
		dev := f.device(t, "PC-0007")
		for _, h2 := range []bool{false, true} {
			tc := f.tlsConfig()
			tc.Certificates = []tls.Certificate{dev}
			tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: h2}
			cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			req, _ := http.NewRequest("GET", "https://"+f.https+"/who", nil)
			req.Host = "web.example.lg.jp"
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			tr.CloseIdleConnections()
			if (resp.ProtoMajor == 2) != h2 || resp.StatusCode != 200 {
				t.Fatalf("h2=%t: %s %s", h2, resp.Proto, resp.Status)
			}
			if resp.Header.Get("Strict-Transport-Security") == "" {
				t.Errorf("h2=%t: no HSTS: the gateway did not see Request.TLS", h2)
			}
			e := f.audit.find(resp.Header.Get("X-Request-Id"))
			if len(e) == 0 || e[0].Info.Device != "PC-0007" || !e[0].Info.TLS {
				t.Errorf("h2=%t: records %+v, want device PC-0007 over TLS", h2, e)
			}
		}
	})
}

// TestNotRequestsNotAudited: idle closes, half-sent requests, failed TLS
// handshakes and plain HTTP sent to the HTTPS port are not requests the
// gateway refused: no audit record; handshake failures are counted.
func TestNotRequestsNotAudited(t *testing.T) {
	f := newListenFixture(t, "  read_header_timeout: 1s")
	dial := func(addr string) net.Conn {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	// Idle close and half a request on the plain listener (net/http
	// answers the cut-off request with 400, to a client that has gone).
	dial(f.http).Close()
	c := dial(f.http)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: web.exa")
	c.Close()
	// Half a request left to time out: net/http closes without answering.
	c = dial(f.http)
	io.WriteString(c, "GET / HTTP/1.1\r\n")
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Errorf("timed-out request answered: %q", b)
	}
	c.Close()
	// A TLS client that closes in the middle of its handshake.
	dial(f.https).Close()
	// A TLS client that never starts its handshake.
	c = dial(f.https)
	start := time.Now()
	io.ReadAll(c)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("silent TLS client held for %v", d)
	}
	c.Close()
	// Plain HTTP to the HTTPS port gets net/http's answer.
	c = dial(f.https)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	c.Close()
	if resp.StatusCode != 400 || string(b) != "Client sent an HTTP request to an HTTPS server.\n" {
		t.Errorf("plain HTTP to the HTTPS port: %d %q", resp.StatusCode, b)
	}
	// An ordinary request afterwards still works over both.
	for _, base := range []string{"http://" + f.http, "https://" + f.https} {
		tr := &http.Transport{TLSClientConfig: f.tlsConfig()}
		req, _ := http.NewRequest("GET", base+"/after", nil)
		req.Host = "web.example.lg.jp"
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", base, resp.StatusCode)
		}
	}
	time.Sleep(100 * time.Millisecond)
	for _, e := range f.audit.all() {
		if e.Info.Path != "/after" {
			t.Errorf("unexpected record %+v", e)
		}
	}
	if n := len(f.audit.all()); n != 2 {
		t.Errorf("%d records, want the 2 ordinary requests", n)
	}
	hs := f.srv.rec.handshakes
	if v := testutil.ToFloat64(hs.WithLabelValues("http_to_https")); v != 1 {
		t.Errorf("handshake failures http_to_https = %v, want 1", v)
	}
	if v := testutil.ToFloat64(hs.WithLabelValues("timeout")); v != 1 {
		t.Errorf("handshake failures timeout = %v, want 1", v)
	}
	if v := testutil.ToFloat64(hs.WithLabelValues("closed")); v != 1 {
		t.Errorf("handshake failures closed = %v, want 1", v)
	}
}

// TestShutdownAbortsHandshakes: a client in the middle of its TLS
// handshake does not hold up graceful shutdown (the handshake deadline is
// 10 s by default), and the HTTPS port refuses connections afterwards.
func TestShutdownAbortsHandshakes(t *testing.T) {
	f := newListenFixture(t, "")
	c, err := net.Dial("tcp", f.https)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "\x16\x03\x01") // the start of a ClientHello record, never finished
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v with a handshake in progress", d)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the half-done handshake's connection is still open")
	}
	if c2, err := net.DialTimeout("tcp", f.https, time.Second); err == nil {
		c2.Close()
		t.Error("the HTTPS port accepts connections after shutdown")
	}
}

// writeLog is a net.Conn that keeps what is written to it.
type writeLog struct {
	net.Conn
	buf   bytes.Buffer
	limit int // accept at most limit bytes per write when > 0
}

func (w *writeLog) Write(p []byte) (int, error) {
	if w.limit > 0 && len(p) > w.limit {
		w.buf.Write(p[:w.limit])
		return w.limit, errShortWrite
	}
	return w.buf.Write(p)
}

func (w *writeLog) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4000} }

var errShortWrite = errors.New("short write")

// TestTrackedConnWrite: the connection rewrites and records only a 4xx/5xx
// status line written while no handler owns it.
func TestTrackedConnWrite(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(okHandler), "")
	rec := &refusalRecorder{gw: f.gw}
	rec.refused = register(f.gw.metrics.Registry(), prometheus.NewCounterVec(refusedOpts, []string{"code"}))
	const refusal400 = "HTTP/1.1 400 Bad Request: invalid header\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request: invalid header"
	cases := []struct {
		name      string
		busy, off bool
		in        string
		rewritten bool
	}{
		{"refusal while idle", false, false, refusal400, true},
		{"refusal while a handler runs", true, false, refusal400, false},
		{"refusal after hijack", false, true, refusal400, false},
		{"success while idle", false, false, "HTTP/1.1 200 OK\r\n\r\n", false},
		{"informational while idle", false, false, "HTTP/1.1 100 Continue\r\n\r\n", false},
		{"body bytes while idle", false, false, "400 Bad Request", false},
		{"HTTP/2 preface", false, false, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wl := &writeLog{}
			tc := &trackedConn{Conn: wl, rec: rec}
			tc.busy.Store(c.busy)
			tc.off.Store(c.off)
			before := len(f.audit.all())
			n, err := tc.Write([]byte(c.in))
			if err != nil || n != len(c.in) {
				t.Fatalf("Write = %d, %v", n, err)
			}
			got := wl.buf.String()
			recs := f.audit.all()[before:]
			if !c.rewritten {
				if got != c.in || len(recs) != 0 {
					t.Fatalf("wrote %q with %d records, want the bytes unchanged and none", got, len(recs))
				}
				return
			}
			if len(recs) != 1 {
				t.Fatalf("%d records", len(recs))
			}
			id := recs[0].Info.RequestID
			want := "HTTP/1.1 400 Bad Request: invalid header\r\nX-Request-Id: " + id + "\r\n" + refusal400[len("HTTP/1.1 400 Bad Request: invalid header\r\n"):]
			if got != want {
				t.Errorf("wrote %q\nwant  %q", got, want)
			}
			if recs[0].Info.IP.String() != "192.0.2.7" || recs[0].Info.Zone != "external" || recs[0].Reasons[1] != "400 Bad Request: invalid header" {
				t.Errorf("record %+v reasons %q", recs[0].Info, recs[0].Reasons)
			}
			// A second refusal on the same connection is not inspected:
			// net/http closes after one.
			wl.buf.Reset()
			tc.Write([]byte(refusal400))
			if wl.buf.String() != refusal400 {
				t.Error("second write rewritten")
			}
		})
	}
	// Short writes report progress in the caller's bytes.
	for _, limit := range []int{5, 42, 60, 70, len(refusal400) + 10} {
		wl := &writeLog{limit: limit}
		tc := &trackedConn{Conn: wl, rec: rec}
		n, _ := tc.Write([]byte(refusal400))
		lineEnd := len("HTTP/1.1 400 Bad Request: invalid header\r\n")
		added := len("X-Request-Id: \r\n") + 16
		want := limit
		switch {
		case limit >= lineEnd+added:
			want = limit - added
		case limit > lineEnd:
			want = lineEnd
		}
		if n != want || n > len(refusal400) {
			t.Errorf("limit %d: Write reported %d, want %d", limit, n, want)
		}
	}
}

// TestParseRefusal covers the shapes net/http writes and what is not one.
func TestParseRefusal(t *testing.T) {
	const eh = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	cases := []struct {
		in   string
		ok   bool
		code int
		text string
	}{
		{"HTTP/1.1 400 Bad Request" + eh + "400 Bad Request", true, 400, "400 Bad Request"},
		{"HTTP/1.1 431 Request Header Fields Too Large" + eh + "431 Request Header Fields Too Large", true, 431, "431 Request Header Fields Too Large"},
		{"HTTP/1.1 501 Not Implemented" + eh + "Unsupported transfer encoding", true, 501, "501 Not Implemented: Unsupported transfer encoding"},
		{"HTTP/1.1 400 Bad Request: malformed Host header" + eh + "400 Bad Request: malformed Host header", true, 400, "400 Bad Request: malformed Host header"},
		{"HTTP/1.1 417 Expectation Failed\r\nDate: x\r\nContent-Length: 0\r\n\r\n", true, 417, "417 Expectation Failed"},
		{"HTTP/1.0 505 HTTP Version Not Supported\r\n\r\n", true, 505, "505 HTTP Version Not Supported"},
		{"HTTP/1.1 400\r\n\r\n", true, 400, "400"},
		{"HTTP/1.1 400 Bad\x00\x1b[31m Request\r\n\r\nbody\x7f", true, 400, "400 Bad[31m Request: body"},
		{"HTTP/1.1 400 Bad Request", false, 0, ""}, // no line end
		{"HTTP/1.1 200 OK\r\n\r\n", false, 0, ""},
		{"HTTP/1.1 399 X\r\n\r\n", false, 0, ""},
		{"HTTP/1.1 600 X\r\n\r\n", false, 0, ""},
		{"HTTP/1.1 4x0 X\r\n\r\n", false, 0, ""},
		{"HTTP/1.1 4000 X\r\n\r\n", false, 0, ""},
		{"HTTP/1.2 400 X\r\n\r\n", false, 0, ""},
		{"HTTP/2 400 X\r\n\r\n", false, 0, ""},
		{"http/1.1 400 X\r\n\r\n", false, 0, ""},
		{"HTTP/1.1  400 X\r\n\r\n", false, 0, ""},
		{"HTTP/1.1 400 " + strings.Repeat("x", 300) + "\r\n\r\n", false, 0, ""}, // status line too long
		{"", false, 0, ""},
	}
	for _, c := range cases {
		r, ok := parseRefusal([]byte(c.in))
		if ok != c.ok || (ok && (r.code != c.code || r.text != c.text)) {
			t.Errorf("parseRefusal(%q) = %+v, %t; want %d %q, %t", c.in, r, ok, c.code, c.text, c.ok)
		}
	}
}

// FuzzParseRefusal: whatever net/http (or anything) writes, the parser
// does not panic, and a recognised refusal stays a valid HTTP response
// with the request id once the header is injected.
func FuzzParseRefusal(f *testing.F) {
	const eh = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	for _, s := range []string{
		"HTTP/1.1 400 Bad Request" + eh + "400 Bad Request",
		"HTTP/1.1 501 Not Implemented" + eh + "Unsupported transfer encoding",
		"HTTP/1.1 400 Bad Request: too many Host headers" + eh + "400 Bad Request: too many Host headers",
		"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.0 400\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		r, ok := parseRefusal(p)
		if !ok {
			return
		}
		if r.code < 400 || r.code > 599 || r.lineEnd > len(p) || string(p[r.lineEnd-2:r.lineEnd]) != "\r\n" {
			t.Fatalf("parseRefusal(%q) = %+v", p, r)
		}
		if len(r.text) > maxRefusalText {
			t.Fatalf("text of %d bytes", len(r.text))
		}
		for _, c := range []byte(r.text) {
			if c < 0x20 || c >= 0x7f {
				t.Fatalf("text %q has a control byte", r.text)
			}
		}
		out := injectRequestID(p, r.lineEnd, "abcdefghijklmnop")
		if !bytes.Equal(out[:r.lineEnd], p[:r.lineEnd]) || !bytes.Equal(out[r.lineEnd+len("X-Request-Id: abcdefghijklmnop\r\n"):], p[r.lineEnd:]) {
			t.Fatalf("injection changed the message: %q", out)
		}
		r2, ok := parseRefusal(out)
		if !ok || r2.code != r.code {
			t.Fatalf("injected message %q no longer a refusal", out)
		}
		if bytes.Contains(p[r.lineEnd:], []byte("\r\n\r\n")) && bytes.HasPrefix(p[r.lineEnd:], []byte("Content-Type:")) {
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
			if err == nil {
				resp.Body.Close()
				if resp.Header.Get("X-Request-Id") != "abcdefghijklmnop" {
					t.Fatalf("injected header not read back from %q", out)
				}
			}
		}
	})
}

// eachParkMode runs fn on a fixture with server settings yaml: as
// configured, with every idle connection parked (park.go), and with the
// fast path on (front.go), which hands every refused request to net/http.
func eachParkMode(t *testing.T, yaml string, fn func(t *testing.T, f *listenFixture)) {
	for _, mode := range []struct{ name, yaml string }{
		{"net/http", yaml},
		{"parked", yaml + "\n  park_idle_after: 1"},
		{"fast path", yaml + "\n  fast_path: true"},
	} {
		t.Run(mode.name, func(t *testing.T) { fn(t, newListenFixture(t, mode.yaml)) })
	}
}
