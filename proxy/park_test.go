package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// do sends raw and reads one response (to a HEAD request if head).
func (c *rawConn) do(raw string, head bool) rawResponse {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.conn, raw); err != nil {
		c.t.Fatal(err)
	}
	var req *http.Request
	if head {
		req = &http.Request{Method: "HEAD"}
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		c.t.Fatal(err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// closed reports whether the server closes the connection within d.
func (c *rawConn) closed(d time.Duration) bool {
	c.conn.SetReadDeadline(time.Now().Add(d))
	_, err := c.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

const getOK = "GET /ok HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n"

// waitParked waits until the gauge of parked connections reads n.
func waitParked(t *testing.T, f *listenFixture, n float64) {
	t.Helper()
	g := newParkMetrics(f.gw.metrics.Registry()).parked
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(g) != n {
		if time.Now().After(deadline) {
			t.Fatalf("parked connections %v, want %v", testutil.ToFloat64(g), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// parks is the number of connections the fixture's listeners parked
// (sekisho_connection_parks_total).
func (f *listenFixture) parks() int64 {
	return int64(testutil.ToFloat64(newParkMetrics(f.gw.metrics.Registry()).parks))
}

// TestParkKeepAlive: with parking on for every connection, a keep-alive
// connection is parked after each answer, woken by its next request and
// served as before: right answers, a new request id each time, and over
// TLS the device certificate and Request.TLS survive every parking.
func TestParkKeepAlive(t *testing.T) {
	f := newListenFixture(t, "  fast_path: false\n  park_idle_after: 1")
	dev := f.device(t, "PC-0042")
	for _, overTLS := range []bool{false, true} {
		name := "plain"
		if overTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			c := f.dialRaw(t, overTLS, &dev)
			before := f.parks()
			ids := map[string]bool{}
			for i := 0; i < 5; i++ {
				r := c.do("GET /n/"+string(rune('a'+i))+" HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n", false)
				if r.status != 200 || r.body != "upstream path=/n/"+string(rune('a'+i)) {
					t.Fatalf("request %d: %d %q", i, r.status, r.body)
				}
				id := r.header.Get("X-Request-Id")
				if id == "" || ids[id] {
					t.Fatalf("request %d: request id %q repeated or missing", i, id)
				}
				ids[id] = true
				if overTLS {
					if r.header.Get("Strict-Transport-Security") == "" {
						t.Errorf("request %d: no HSTS: Request.TLS lost after parking", i)
					}
					e := f.audit.find(id)
					if len(e) != 1 || e[0].Info.Device != "PC-0042" || !e[0].Info.TLS {
						t.Errorf("request %d: records %+v, want one with device PC-0042 over TLS", i, e)
					}
				}
				waitParked(t, f, 1)
			}
			if got := f.parks() - before; got != 5 {
				t.Errorf("%d parkings, want 5", got)
			}
		})
	}
}

// TestParkPipelined: requests sent together are answered in order, the
// bytes net/http had already read past the first request given back.
func TestParkPipelined(t *testing.T) {
	f := newListenFixture(t, "  fast_path: false\n  park_idle_after: 1")
	for _, overTLS := range []bool{false, true} {
		raw := "GET /p/1 HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n" +
			"GET /p/2 HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n" +
			"GET /p/3 HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n"
		before := f.parks()
		rs := f.exchange(t, overTLS, nil, raw, 3)
		for i, r := range rs {
			if want := "upstream path=/p/" + string(rune('1'+i)); r.status != 200 || r.body != want {
				t.Fatalf("tls=%t response %d: %d %q, want %q", overTLS, i+1, r.status, r.body, want)
			}
		}
		if got := f.parks() - before; got < 2 {
			t.Errorf("tls=%t: %d parkings, want at least 2", overTLS, got)
		}
	}
}

// TestParkOnlyCompleteExchanges: a connection is parked only where
// net/http would keep it open with nothing of the exchange in flight.
// Whether the first exchange parked is read after the next answer on the
// same connection (parking happens before net/http reads further).
func TestParkOnlyCompleteExchanges(t *testing.T) {
	f := newListenFixture(t, "  fast_path: false\n  park_idle_after: 1")
	const host = "Host: web.example.lg.jp\r\n"
	for _, c := range []struct {
		name string
		raw  string
		head bool
		want int
		park bool
	}{
		{"get", "GET /a HTTP/1.1\r\n" + host + "\r\n", false, 200, true},
		{"no content", "GET /empty HTTP/1.1\r\n" + host + "\r\n", false, 204, true},
		{"refused by the gateway", "GET /x HTTP/1.1\r\nHost: unknown.example.lg.jp\r\n\r\n", false, 404, true},
		{"head", "HEAD /a HTTP/1.1\r\n" + host + "\r\n", true, 200, false},
		{"request body", "POST /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello", false, 200, false},
		{"streamed response", "GET /stream HTTP/1.1\r\n" + host + "\r\n", false, 200, false},
		{"chunked request", "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false, 200, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			pc := f.dialRaw(t, false, nil)
			before := f.parks()
			r := pc.do(c.raw, c.head)
			if r.status != c.want {
				t.Fatalf("status %d, want %d", r.status, c.want)
			}
			if c.name == "chunked request" {
				// Closed after a chunked request (closeAfterChunked), never parked.
				if !pc.closed(5 * time.Second) {
					t.Error("connection left open after a chunked request")
				}
				if got := f.parks() - before; got != 0 {
					t.Errorf("%d parkings", got)
				}
				return
			}
			if r2 := pc.do(getOK, false); r2.status != 200 {
				t.Fatalf("next request: status %d", r2.status)
			}
			want := int64(1) // the second exchange parks
			if c.park {
				want = 2
			}
			if got := f.parks() - before; got != want {
				t.Errorf("%d parkings, want %d", got, want)
			}
		})
	}
	// Connection: close from the client, and HTTP/1.0: answered, closed,
	// never parked.
	for _, raw := range []string{
		"GET /a HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n",
		"GET /a HTTP/1.0\r\n" + host + "\r\n",
	} {
		pc := f.dialRaw(t, false, nil)
		before := f.parks()
		if r := pc.do(raw, false); r.status != 200 {
			t.Fatalf("%q: status %d", raw, r.status)
		}
		if !pc.closed(5 * time.Second) {
			t.Errorf("%q: connection left open", raw)
		}
		if got := f.parks() - before; got != 0 {
			t.Errorf("%q: %d parkings", raw, got)
		}
	}
}

// TestParkRefusalAfterWake: a malformed request on a woken connection is
// still net/http's refusal, audited with the request id it answers with.
func TestParkRefusalAfterWake(t *testing.T) {
	f := newListenFixture(t, "  fast_path: false\n  park_idle_after: 1")
	for _, overTLS := range []bool{false, true} {
		pc := f.dialRaw(t, overTLS, nil)
		if r := pc.do(getOK, false); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		waitParked(t, f, 1)
		r := pc.do("GET /bad%zz HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n", false)
		if r.status != 400 {
			t.Fatalf("tls=%t: status %d, want 400", overTLS, r.status)
		}
		e := f.audit.find(r.header.Get("X-Request-Id"))
		if len(e) != 1 || e[0].Rule != ruleNetHTTP || e[0].Info.TLS != overTLS {
			t.Fatalf("tls=%t: records %+v", overTLS, e)
		}
		if !pc.closed(5 * time.Second) {
			t.Errorf("tls=%t: connection open after a refusal", overTLS)
		}
		waitParked(t, f, 0)
	}
}

// TestParkThreshold: below server.park_idle_after connections nothing is
// parked; from it on, finished exchanges are.
func TestParkThreshold(t *testing.T) {
	f := newListenFixture(t, "  fast_path: false\n  park_idle_after: 3")
	a, b, c := f.dialRaw(t, false, nil), f.dialRaw(t, false, nil), f.dialRaw(t, false, nil)
	// Let net/http count all three before the first answer.
	deadline := time.Now().Add(10 * time.Second)
	for f.srv.parkers[1].open.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("open connections %d, want 3", f.srv.parkers[1].open.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.do(getOK, false)
	if got := f.parks(); got != 1 {
		t.Fatalf("%d parkings with 3 connections open, want 1", got)
	}
	c.conn.Close()
	b.conn.Close()
	deadline = time.Now().Add(10 * time.Second)
	for f.srv.parkers[1].open.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("open connections %d, want 0", f.srv.parkers[1].open.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// a is parked (counted), and alone with one new connection: 2 < 3.
	d := f.dialRaw(t, false, nil)
	d.do(getOK, false)
	a.do(getOK, false)
	if got := f.parks(); got != 1 {
		t.Errorf("%d parkings with 2 connections open, want still 1", got)
	}
}

// TestParkDefaultOff: at the default threshold (1,000) a handful of
// connections is never parked, and park_idle_after: -1 turns parking off.
func TestParkDefaultOff(t *testing.T) {
	for _, yaml := range []string{"  fast_path: false", "  fast_path: false\n  park_idle_after: -1"} {
		f := newListenFixture(t, yaml)
		pc := f.dialRaw(t, false, nil)
		pc.do(getOK, false)
		pc.do(getOK, false)
		if yaml == "  fast_path: false" {
			if got := f.parks(); got != 0 {
				t.Errorf("default: %d parkings", got)
			}
		} else if f.srv.parkers[1] != nil {
			t.Error("park_idle_after: -1 built a parker")
		}
	}
}

// TestParkIdleTimeout: a parked connection is closed after
// server.idle_timeout, as net/http closes its idle ones.
func TestParkIdleTimeout(t *testing.T) {
	f := newListenFixture(t, "  fast_path: false\n  park_idle_after: 1\n  idle_timeout: 300ms")
	pc := f.dialRaw(t, false, nil)
	pc.do(getOK, false)
	if !pc.closed(10 * time.Second) {
		t.Fatal("parked connection not closed after the idle timeout")
	}
	waitParked(t, f, 0)
}

// TestParkShutdown: shutdown closes parked connections and returns.
func TestParkShutdown(t *testing.T) {
	f := newListenFixture(t, "  fast_path: false\n  park_idle_after: 1")
	pcs := []*rawConn{f.dialRaw(t, false, nil), f.dialRaw(t, true, nil)}
	for _, pc := range pcs {
		pc.do(getOK, false)
	}
	waitParked(t, f, 2)
	start := time.Now()
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("shutdown took %v with parked connections", d)
	}
	for i, pc := range pcs {
		if !pc.closed(5 * time.Second) {
			t.Errorf("connection %d open after shutdown", i)
		}
	}
	waitParked(t, f, 0)
}

// TestParkableRules checks parkable's reading of the exchange directly.
func TestParkableRules(t *testing.T) {
	req := func(method, proto string, close bool) *http.Request {
		r := &http.Request{Method: method, Proto: proto, Close: close}
		r.ProtoMajor, r.ProtoMinor, _ = http.ParseHTTPVersion(proto)
		return r
	}
	ex := func(code int, written int64, hdr ...string) *exchange {
		w := &headerOnly{h: http.Header{}}
		for i := 0; i+1 < len(hdr); i += 2 {
			w.h.Add(hdr[i], hdr[i+1])
		}
		return &exchange{ResponseWriter: w, code: code, written: written}
	}
	for _, c := range []struct {
		name string
		r    *http.Request
		body bool
		e    *exchange
		want bool
	}{
		{"complete", req("GET", "HTTP/1.1", false), false, ex(200, 5, "Content-Length", "5"), true},
		{"short body", req("GET", "HTTP/1.1", false), false, ex(200, 4, "Content-Length", "5"), false},
		{"no length", req("GET", "HTTP/1.1", false), false, ex(200, 5), false},
		{"two lengths", req("GET", "HTTP/1.1", false), false, ex(200, 5, "Content-Length", "5", "Content-Length", "5"), false},
		{"bad length", req("GET", "HTTP/1.1", false), false, ex(200, 5, "Content-Length", "+5"), false},
		{"chunked", req("GET", "HTTP/1.1", false), false, ex(200, 5, "Content-Length", "5", "Transfer-Encoding", "chunked"), false},
		{"close", req("GET", "HTTP/1.1", false), false, ex(200, 5, "Content-Length", "5", "Connection", "keep-alive, Close"), false},
		{"client close", req("GET", "HTTP/1.1", true), false, ex(200, 5, "Content-Length", "5"), false},
		{"http/1.0", req("GET", "HTTP/1.0", false), false, ex(200, 5, "Content-Length", "5"), false},
		{"body", req("POST", "HTTP/1.1", false), true, ex(200, 5, "Content-Length", "5"), false},
		{"head", req("HEAD", "HTTP/1.1", false), false, ex(200, 0, "Content-Length", "5"), false},
		{"nothing written", req("GET", "HTTP/1.1", false), false, ex(0, 0), false},
		{"204", req("GET", "HTTP/1.1", false), false, ex(204, 0), true},
		{"304", req("GET", "HTTP/1.1", false), false, ex(304, 0), true},
		{"204 with bytes", req("GET", "HTTP/1.1", false), false, ex(204, 3), false},
	} {
		if got := parkable(c.r, c.body, c.e); got != c.want {
			t.Errorf("%s: parkable = %t, want %t", c.name, got, c.want)
		}
	}
}

type headerOnly struct {
	http.ResponseWriter
	h http.Header
}

func (w *headerOnly) Header() http.Header { return w.h }

// TestParkConcurrent: many keep-alive clients at once, every connection
// parked after every answer, plain and over TLS: each answer is the one
// its request asked for (no connection state crosses between requests).
func TestParkConcurrent(t *testing.T) {
	f := newListenFixture(t, "  fast_path: false\n  park_idle_after: 1")
	for _, base := range []string{"http://" + f.http, "https://" + f.https} {
		before := f.parks()
		f.concurrentGETs(t, base, 16, 40)
		if got := f.parks() - before; got < 100 {
			t.Errorf("%s: %d parkings, want most of 640", base, got)
		}
	}
}

// holdConn keeps what is written until flush, or until the next read,
// so that several TLS records reach the server in one TCP write.
type holdConn struct {
	net.Conn
	buf []byte
}

func (c *holdConn) Write(b []byte) (int, error) {
	c.buf = append(c.buf, b...)
	return len(b), nil
}

func (c *holdConn) Read(b []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *holdConn) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = nil
	return err
}

// TestParkTLSRecordBuffered: a request that crypto/tls has already read
// from the socket when the connection is parked is answered. Here it is
// the first request, sent in the same TCP write as the client's Finished
// message, so the server's handshake reads it; watching the socket for it
// would wait for ever: the parker must find it in crypto/tls first
// (settle).
func TestParkTLSRecordBuffered(t *testing.T) {
	for _, fast := range []string{"true", "false"} {
		t.Run("fast_path="+fast, func(t *testing.T) {
			f := newListenFixture(t, "  fast_path: "+fast+"\n  park_idle_after: 1")
			raw, err := net.DialTimeout("tcp", f.https, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			hc := &holdConn{Conn: raw}
			tc := tls.Client(hc, f.tlsConfig("http/1.1"))
			defer tc.Close()
			tc.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			if tc.ConnectionState().Version != tls.VersionTLS13 {
				t.Fatal("not TLS 1.3: the client's Finished would not be the last handshake message")
			}
			if _, err := io.WriteString(tc, "GET /rec/0 HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			if err := hc.flush(); err != nil { // Finished and the request together
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "upstream path=/rec/0" {
				t.Fatalf("%d %q", resp.StatusCode, b)
			}
			// The request whole, not missing the byte the parker read.
			if e := f.audit.find(resp.Header.Get("X-Request-Id")); len(e) != 1 || e[0].Info.Method != "GET" {
				t.Fatalf("records %+v, want one GET", e)
			}
		})
	}
}
