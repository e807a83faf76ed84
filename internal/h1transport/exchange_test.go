package h1transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sekisho/sekisho/internal/testnet"
)

// exReq prepares a request head as the gateway's fast path does
// (proxy/fastfwd.go): names as given, no special headers, Host added as an
// ordinary field. kv holds name, value pairs.
func exReq(method, uri, host string, kv ...string) *fasthttp.RequestHeader {
	var req fasthttp.RequestHeader
	req.DisableNormalizing()
	req.DisableSpecialHeader()
	req.SetMethod(method)
	req.SetRequestURI(uri)
	req.Add("Host", host)
	for i := 0; i+1 < len(kv); i += 2 {
		req.Add(kv[i], kv[i+1])
	}
	return &req
}

// exResp prepares a response as the gateway's fast path does.
func exResp() *fasthttp.Response {
	var resp fasthttp.Response
	resp.Header.SetNoDefaultContentType(true)
	return &resp
}

// exHost is the host:port of an httptest server.
func exHost(s *httptest.Server) string {
	return strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://")
}

// exReadAll reads s to its end and checks that the end is io.EOF and that
// it stays so.
func exReadAll(s *Stream) (string, error) {
	b, err := io.ReadAll(s) // nil only when the last Read gave io.EOF itself
	if err != nil {
		return string(b), err
	}
	if n, err := s.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		return string(b), fmt.Errorf("Read after the end: %d, %v; want 0, io.EOF", n, err)
	}
	return string(b), nil
}

// exGet sends req through Exchange, or with raw through ExchangeGet (the
// head as bytes, which on plain TCP takes the socket path of sendRaw).
func exGet(ctx context.Context, tr *Transport, host string, req *fasthttp.RequestHeader, resp *fasthttp.Response, raw bool) (*Stream, error) {
	if raw {
		return tr.ExchangeGet(ctx, false, host, append([]byte(nil), req.Header()...), resp, nil)
	}
	return tr.Exchange(ctx, false, host, req, resp)
}

// exDo sends req with a fresh response and reads the whole body.
func exDo(t *testing.T, tr *Transport, host string, req *fasthttp.RequestHeader) (*fasthttp.Response, string) {
	t.Helper()
	return exDoMode(t, tr, host, req, false)
}

// exDoMode is exDo through exGet.
func exDoMode(t *testing.T, tr *Transport, host string, req *fasthttp.RequestHeader, raw bool) (*fasthttp.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp := exResp()
	s, err := exGet(ctx, tr, host, req, resp, raw)
	if err != nil {
		t.Fatalf("Exchange %s: %v", req.RequestURI(), err)
	}
	defer s.Close()
	body, err := exReadAll(s)
	if err != nil {
		t.Fatalf("Exchange %s: body %q: %v", req.RequestURI(), body, err)
	}
	return resp, body
}

// exUpstream is an upstream on a bare TCP listener. For every request head
// it reads, it calls handle with the connection's number (from 0), the
// request's number on that connection (from 0), the head's exact bytes
// and the connection; the connection is closed when handle returns false.
// done is closed at cleanup, for handlers that wait.
type exUpstream struct {
	ln    net.Listener
	done  chan struct{}
	conns atomic.Int32
	mu    sync.Mutex
	heads []string
	open  map[net.Conn]bool
	wg    sync.WaitGroup
}

func newExUpstream(t *testing.T, handle func(id, n int, head string, c net.Conn) bool) *exUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &exUpstream{ln: ln, done: make(chan struct{}), open: make(map[net.Conn]bool)}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			id := int(u.conns.Add(1)) - 1
			u.mu.Lock()
			u.open[c] = true
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer func() {
					c.Close()
					u.mu.Lock()
					delete(u.open, c)
					u.mu.Unlock()
				}()
				br := bufio.NewReader(c)
				for n := 0; ; n++ {
					head, err := exReadHead(br)
					if err != nil {
						return
					}
					u.mu.Lock()
					u.heads = append(u.heads, head)
					u.mu.Unlock()
					if !handle(id, n, head, c) {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		close(u.done)
		ln.Close()
		u.mu.Lock()
		for c := range u.open {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *exUpstream) host() string { return u.ln.Addr().String() }

func (u *exUpstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.heads...)
}

// exReadHead reads a request head up to and including its empty line.
func exReadHead(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		line, err := br.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			return sb.String(), err
		}
		if line == "\r\n" || line == "\n" {
			return sb.String(), nil
		}
	}
}

// exAnswer is a handler that answers every request with raw and keeps the
// connection open.
func exAnswer(raw string) func(int, int, string, net.Conn) bool {
	return func(_, _ int, _ string, c net.Conn) bool {
		_, err := io.WriteString(c, raw)
		return err == nil
	}
}

// exChunked frames parts as a chunked body, with the given trailer lines.
func exChunked(trailer string, parts ...string) string {
	var sb strings.Builder
	for _, p := range parts {
		fmt.Fprintf(&sb, "%x\r\n%s\r\n", len(p), p)
	}
	sb.WriteString("0\r\n" + trailer + "\r\n")
	return sb.String()
}

// exPattern is n bytes that tell their offsets apart.
func exPattern(seed string, n int) string {
	var sb strings.Builder
	for i := 0; sb.Len() < n; i++ {
		fmt.Fprintf(&sb, "%s:%d;", seed, i)
	}
	return sb.String()[:n]
}

func TestExchangeRequestOnTheWire(t *testing.T) {
	cases := []struct {
		name string
		req  *fasthttp.RequestHeader
		want string
	}{
		{"as the gateway sends it", exReq("GET", "/path?q", "example", "X-A", "1"),
			"GET /path?q HTTP/1.1\r\nHost: example\r\nX-A: 1\r\n\r\n"},
		{"names not normalised, repeats kept in order",
			exReq("GET", "/a%20b/c?x=1&y=%2F", "up.example:8080",
				"x-lower", "a", "X-MiXeD_name", "b", "x-lower", "c",
				"Cookie", "s=1; t=2", "Accept-Encoding", "gzip, br", "X-Empty", ""),
			"GET /a%20b/c?x=1&y=%2F HTTP/1.1\r\nHost: up.example:8080\r\nx-lower: a\r\nX-MiXeD_name: b\r\n" +
				"x-lower: c\r\nCookie: s=1; t=2\r\nAccept-Encoding: gzip, br\r\nX-Empty: \r\n\r\n"},
		{"User-Agent and Content-Type only as given", exReq("GET", "/", "h", "User-Agent", "ua/1", "content-type", "text/x"),
			"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: ua/1\r\ncontent-type: text/x\r\n\r\n"},
		{"body-less DELETE has no Content-Length", exReq("DELETE", "/d", "h"),
			"DELETE /d HTTP/1.1\r\nHost: h\r\n\r\n"},
	}
	u := newExUpstream(t, exAnswer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	tr, _ := newTransport(t, Options{})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := exDo(t, tr, u.host(), tc.req)
			if resp.StatusCode() != 200 || body != "ok" {
				t.Fatalf("%d %q, want 200 ok", resp.StatusCode(), body)
			}
			seen := u.seen()
			if len(seen) != i+1 {
				t.Fatalf("upstream saw %d requests, want %d", len(seen), i+1)
			}
			if seen[i] != tc.want {
				t.Errorf("upstream received\n%q\nwant\n%q", seen[i], tc.want)
			}
		})
	}
	if n := u.conns.Load(); n != 1 {
		t.Errorf("upstream saw %d connections, want 1", n)
	}
}

func TestExchangeRequestSeenByNetHTTP(t *testing.T) {
	type seen struct {
		method, uri, host string
		header            http.Header
		cl                int64
		te                []string
	}
	got := make(chan seen, 1)
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Method, r.RequestURI, r.Host, r.Header, r.ContentLength, r.TransferEncoding}
		io.WriteString(w, "ok")
	})
	tr, _ := newTransport(t, Options{})
	_, body := exDo(t, tr, exHost(s.Server), exReq("GET", "/path?q", "example", "X-A", "1", "x-b", "2", "x-b", "3"))
	if body != "ok" {
		t.Fatalf("body %q", body)
	}
	r := <-got
	if r.method != "GET" || r.uri != "/path?q" || r.host != "example" || r.cl != 0 || r.te != nil {
		t.Errorf("upstream saw %s %s Host %q length %d TE %q", r.method, r.uri, r.host, r.cl, r.te)
	}
	want := http.Header{"X-A": {"1"}, "X-B": {"2", "3"}}
	if fmt.Sprint(r.header) != fmt.Sprint(want) {
		t.Errorf("upstream saw header %v, want %v (no User-Agent, no Content-Length)", r.header, want)
	}
}

func TestExchangeBodies(t *testing.T) {
	big := exPattern("cl", 100_000)
	p1, p2, p3 := exPattern("a", 7000), exPattern("b", 9000), exPattern("c", 30)
	cases := []struct {
		name    string
		raw     string // the upstream's answer to each request
		close   bool   // the upstream closes after it
		status  int
		body    string
		trailer string // "name: value" expected in resp.Header after the body
		atOnce  bool   // the Stream ends (and the connection is pooled) before any Read
		conns   int32  // connections for two exchanges
	}{
		{name: "content-length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world",
			status: 200, body: "hello world", conns: 1},
		{name: "content-length larger than the buffer", raw: "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + big,
			status: 200, body: big, conns: 1},
		{name: "content-length 0", raw: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
			status: 200, body: "", conns: 1},
		{name: "chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + exChunked("", p1, p2, p3),
			status: 200, body: p1 + p2 + p3, conns: 1},
		{name: "chunked with extension", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n",
			status: 200, body: "hello", conns: 1},
		{name: "chunked with trailer", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
			exChunked("X-Sum: 42\r\n", "hello", " ", "world"),
			status: 200, body: "hello world", trailer: "X-Sum: 42", conns: 1},
		{name: "304 with the representation's length", raw: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n\r\n",
			status: 304, atOnce: true, conns: 1},
		{name: "until close", raw: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + big, close: true,
			status: 200, body: big, conns: 2},
		{name: "Connection: close from the upstream", raw: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", conns: 2},
		{name: "HTTP/1.0 without keep-alive", raw: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", conns: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := newExUpstream(t, func(_, _ int, _ string, c net.Conn) bool {
				_, err := io.WriteString(c, tc.raw)
				return err == nil && !tc.close
			})
			tr, _ := newTransport(t, Options{})
			for i := range 2 {
				resp := exResp()
				s, err := tr.Exchange(context.Background(), false, u.host(), exReq("GET", "/", "h"), resp)
				if err != nil {
					t.Fatalf("exchange %d: %v", i, err)
				}
				if tc.atOnce {
					if n := pooled(tr); n != 1 {
						t.Errorf("exchange %d: %d idle connections before any Read, want 1", i, n)
					}
				}
				body, err := exReadAll(s)
				s.Close()
				if err != nil {
					t.Fatalf("exchange %d: body: %v", i, err)
				}
				if resp.StatusCode() != tc.status || body != tc.body {
					t.Fatalf("exchange %d: %d, body of %d bytes (%.40q), want %d, %d bytes (%.40q)",
						i, resp.StatusCode(), len(body), body, tc.status, len(tc.body), tc.body)
				}
				if tc.trailer != "" {
					k, v, _ := strings.Cut(tc.trailer, ": ")
					if got := string(resp.Header.Peek(k)); got != v {
						t.Errorf("exchange %d: trailer %s = %q, want %q", i, k, got, v)
					}
				}
			}
			if n := u.conns.Load(); n != tc.conns {
				t.Errorf("upstream saw %d connections, want %d", n, tc.conns)
			}
			wantIdle := 0
			if tc.conns == 1 {
				wantIdle = 1
			}
			if n := pooled(tr); n != wantIdle {
				t.Errorf("%d idle connections, want %d", n, wantIdle)
			}
		})
	}
}

func TestExchangeBodiesFromNetHTTP(t *testing.T) {
	big := exPattern("big", 50_000)
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			io.WriteString(w, big)
		case "/chunked":
			for _, p := range []string{"one;", "two;", "three;"} {
				io.WriteString(w, p)
				w.(http.Flusher).Flush()
			}
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "part0;")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part1;")
			w.Header().Set("X-Sum", "2")
		}
	})
	tr, _ := newTransport(t, Options{})
	cases := []struct {
		path, body, chunked, trailer string
		status                       int
	}{
		{"/length", big, "", "", 200},
		{"/chunked", "one;two;three;", "chunked", "", 200},
		{"/trailer", "part0;part1;", "chunked", "2", 200},
		{"/length", big, "", "", 200},
	}
	for _, tc := range cases {
		resp, body := exDo(t, tr, exHost(s.Server), exReq("GET", tc.path, "example"))
		if resp.StatusCode() != tc.status || body != tc.body {
			t.Errorf("%s: %d, %d bytes, want %d, %d bytes", tc.path, resp.StatusCode(), len(body), tc.status, len(tc.body))
		}
		if te := string(resp.Header.Peek("Transfer-Encoding")); te != tc.chunked {
			t.Errorf("%s: Transfer-Encoding %q, want %q", tc.path, te, tc.chunked)
		}
		if v := string(resp.Header.Peek("X-Sum")); v != tc.trailer {
			t.Errorf("%s: trailer X-Sum %q, want %q", tc.path, v, tc.trailer)
		}
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("server saw %d connections for %d exchanges, want 1", n, len(cases))
	}
}

// TestExchangeNoBodyStatusReuse: 204 and 304 answers have no body, and
// usually no Content-Length either; the Stream ends at once and the
// connection goes back to the pool, as RoundTrip does with them.
func TestExchangeNoBodyStatusReuse(t *testing.T) {
	raw := map[string]string{
		"/204":             "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
		"/304":             "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
		"/304-with-length": "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n\r\n",
	}
	u := newExUpstream(t, func(_, _ int, head string, c net.Conn) bool {
		path := strings.Fields(head)[1]
		_, err := io.WriteString(c, raw[path])
		return err == nil
	})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.Header().Set("ETag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		}
	})
	cases := []struct {
		name, host, path string
		status           int
		conns            func() int32
	}{
		{"raw 204", u.host(), "/204", 204, u.conns.Load},
		{"raw 304", u.host(), "/304", 304, u.conns.Load},
		{"raw 304 with the representation's length", u.host(), "/304-with-length", 304, u.conns.Load},
		{"net/http 204", exHost(s.Server), "/204", 204, s.conns.Load},
		{"net/http 304", exHost(s.Server), "/304", 304, s.conns.Load},
	}
	var bugs []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTransport(t, Options{})
			before := tc.conns()
			for i := range 2 {
				resp := exResp()
				st, err := tr.Exchange(context.Background(), false, tc.host, exReq("GET", tc.path, "h"), resp)
				if err != nil {
					t.Fatal(err)
				}
				if st.err != io.EOF {
					t.Errorf("exchange %d: the Stream had not ended before any Read (%v)", i, st.err)
				}
				body, err := exReadAll(st)
				st.Close()
				if err != nil || body != "" || resp.StatusCode() != tc.status {
					t.Fatalf("exchange %d: %d %q, %v; want %d, no body", i, resp.StatusCode(), body, err, tc.status)
				}
			}
			if n := tc.conns() - before; n != 1 {
				bugs = append(bugs, fmt.Sprintf("%s: %d connections for 2 exchanges", tc.name, n))
			}
		})
	}
	if len(bugs) > 0 {
		t.Errorf("the connection of a 204 or 304 without Content-Length is closed, not pooled "+
			"(fasthttp leaves ContentLength() at -2 for them, which Exchange takes for a close-delimited body): %s",
			strings.Join(bugs, "; "))
	}
}

func TestExchangeReuse(t *testing.T) {
	s := newServer(t, echoPath)
	tr, fb := newTransport(t, Options{})
	for i := range 5 {
		p := fmt.Sprintf("/r%d", i)
		if _, body := exDo(t, tr, exHost(s.Server), exReq("GET", p, "example")); body != p {
			t.Fatalf("GET %s: body %q", p, body)
		}
		if n := pooled(tr); n != 1 {
			t.Fatalf("after GET %s: %d idle connections, want 1", p, n)
		}
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("server saw %d connections for 5 sequential exchanges, want 1", n)
	}
	if n := fb.n.Load(); n != 0 {
		t.Errorf("fallback took %d requests, want 0", n)
	}
}

func TestExchangeNotReused(t *testing.T) {
	t.Run("server Connection: close", func(t *testing.T) {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		})
		tr, _ := newTransport(t, Options{})
		for range 2 {
			resp, body := exDo(t, tr, exHost(s.Server), exReq("GET", "/", "h"))
			if body != "bye" || !resp.ConnectionClose() {
				t.Fatalf("body %q, ConnectionClose %v", body, resp.ConnectionClose())
			}
		}
		if n := s.conns.Load(); n != 2 {
			t.Errorf("server saw %d connections, want 2", n)
		}
	})
	t.Run("client Connection: close", func(t *testing.T) {
		// An upstream that does not answer the client's close with its
		// own and keeps the connection open: the client must not reuse it.
		u := newExUpstream(t, exAnswer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		tr, _ := newTransport(t, Options{})
		for range 2 {
			var req fasthttp.RequestHeader // special headers on: SetConnectionClose writes the field
			req.SetRequestURI("/")
			req.SetHost("h")
			req.SetConnectionClose()
			exDo(t, tr, u.host(), &req)
		}
		for i, h := range u.seen() {
			if !strings.Contains(h, "\r\nConnection: close\r\n") {
				t.Errorf("request %d sent without Connection: close:\n%q", i, h)
			}
		}
		if n := u.conns.Load(); n != 2 {
			t.Errorf("upstream saw %d connections, want 2", n)
		}
		if n := pooled(tr); n != 0 {
			t.Errorf("%d idle connections, want 0", n)
		}
	})
	t.Run("close before EOF", func(t *testing.T) {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strings.Repeat("x", 64<<10))
		})
		tr, _ := newTransport(t, Options{})
		s1, err := tr.Exchange(context.Background(), false, exHost(s.Server), exReq("GET", "/", "h"), exResp())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s1, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		s1.Close()
		s1.Close() // twice: harmless
		if n, err := s1.Read(make([]byte, 1)); n != 0 || err == nil || err == io.EOF {
			t.Errorf("Read after Close: %d, %v; want 0 and an error other than io.EOF", n, err)
		}
		if n := pooled(tr); n != 0 {
			t.Errorf("%d idle connections after an early Close, want 0", n)
		}
		if _, body := exDo(t, tr, exHost(s.Server), exReq("GET", "/", "h")); len(body) != 64<<10 {
			t.Fatalf("second body %d bytes", len(body))
		}
		if n := s.conns.Load(); n != 2 {
			t.Errorf("server saw %d connections, want 2", n)
		}
		if n := pooled(tr); n != 1 {
			t.Errorf("%d idle connections, want 1", n)
		}
	})
	t.Run("close before any Read", func(t *testing.T) {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "small") })
		tr, _ := newTransport(t, Options{})
		s1, err := tr.Exchange(context.Background(), false, exHost(s.Server), exReq("GET", "/", "h"), exResp())
		if err != nil {
			t.Fatal(err)
		}
		s1.Close()
		if n := pooled(tr); n != 0 {
			t.Errorf("%d idle connections after Close of an unread body, want 0", n)
		}
	})
	t.Run("read error on an open connection", func(t *testing.T) {
		// A malformed chunk size on the first connection, which the
		// upstream keeps open; a good answer on the others.
		u := newExUpstream(t, func(id, _ int, _ string, c net.Conn) bool {
			raw := "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood"
			if id == 0 {
				raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n"
			}
			_, err := io.WriteString(c, raw)
			return err == nil
		})
		tr, _ := newTransport(t, Options{})
		s1, err := tr.Exchange(context.Background(), false, u.host(), exReq("GET", "/", "h"), exResp())
		if err != nil {
			t.Fatal(err)
		}
		body, err := exReadAll(s1)
		if err == nil {
			t.Fatalf("malformed chunk read as %q without error", body)
		}
		if n, err2 := s1.Read(make([]byte, 1)); n != 0 || err2 == nil || err2 == io.EOF {
			t.Errorf("Read after the error: %d, %v; want 0 and the error", n, err2)
		}
		s1.Close()
		if n := pooled(tr); n != 0 {
			t.Errorf("%d idle connections after a read error, want 0", n)
		}
		if _, body := exDo(t, tr, u.host(), exReq("GET", "/", "h")); body != "good" {
			t.Fatalf("second body %q", body)
		}
		if n := u.conns.Load(); n != 2 {
			t.Errorf("upstream saw %d connections, want 2", n)
		}
	})
}

// TestExchangeClientCloseAsGatewayWritesIt: with special headers disabled,
// as the gateway prepares its requests, a "Connection: close" field is
// sent as an ordinary field; the client then asked to close, and the
// connection must not be pooled.
func TestExchangeClientCloseAsGatewayWritesIt(t *testing.T) {
	u := newExUpstream(t, exAnswer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	tr, _ := newTransport(t, Options{})
	exDo(t, tr, u.host(), exReq("GET", "/", "h", "Connection", "close"))
	if h := u.seen()[0]; !strings.Contains(h, "\r\nConnection: close\r\n") {
		t.Fatalf("sent without Connection: close:\n%q", h)
	}
	if n := pooled(tr); n != 0 {
		t.Error("a request head sent with \"Connection: close\" (special headers disabled, as in proxy/fastfwd.go) " +
			"leaves its connection pooled: Exchange looks only at req.ConnectionClose(), which Add does not set")
	}
}

func TestExchangeHEAD(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		if r.Method != "HEAD" {
			io.WriteString(w, strings.Repeat("a", 1000))
		}
	})
	tr, _ := newTransport(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp := exResp()
	st, err := tr.Exchange(ctx, false, exHost(s.Server), exReq("HEAD", "/", "h"), resp)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	body, err := exReadAll(st)
	if err != nil {
		t.Fatalf("the body of a HEAD response is read as if it had Content-Length bytes "+
			"(Exchange does not set resp.SkipBody): %q, %v", body, err)
	}
	if body != "" || resp.Header.ContentLength() != 1000 {
		t.Errorf("HEAD: body %q, length %d; want none, 1000", body, resp.Header.ContentLength())
	}
}

func TestExchangeInformational(t *testing.T) {
	final := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"
	cases := []struct {
		name, interim string
	}{
		{"100", "HTTP/1.1 100 Continue\r\n\r\n"},
		{"103", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"},
		{"100 and two 103", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" +
			"HTTP/1.1 103 Early Hints\r\nLink: </b.js>\r\n\r\n"},
	}
	for _, tc := range cases {
		for _, split := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/split=%v", tc.name, split), func(t *testing.T) {
				u := newExUpstream(t, func(_, _ int, _ string, c net.Conn) bool {
					if split { // the interim answers arrive before the final one
						if _, err := io.WriteString(c, tc.interim); err != nil {
							return false
						}
						time.Sleep(20 * time.Millisecond)
						_, err := io.WriteString(c, final)
						return err == nil
					}
					_, err := io.WriteString(c, tc.interim+final)
					return err == nil
				})
				tr, _ := newTransport(t, Options{})
				for range 2 {
					resp, body := exDo(t, tr, u.host(), exReq("GET", "/", "h"))
					if resp.StatusCode() != 200 || body != "final" {
						t.Fatalf("%d %q, want 200 final", resp.StatusCode(), body)
					}
					if v := resp.Header.Peek("Link"); v != nil {
						t.Errorf("the interim Link %q leaked into the final head", v)
					}
				}
				if n := u.conns.Load(); n != 1 {
					t.Errorf("upstream saw %d connections, want 1", n)
				}
			})
		}
	}
	t.Run("net/http 103", func(t *testing.T) {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "final")
		})
		tr, _ := newTransport(t, Options{})
		resp, body := exDo(t, tr, exHost(s.Server), exReq("GET", "/", "h"))
		if resp.StatusCode() != 200 || body != "final" || resp.Header.Peek("Link") != nil {
			t.Fatalf("%d %q Link %q, want 200 final and no Link", resp.StatusCode(), body, resp.Header.Peek("Link"))
		}
	})
	t.Run("101", func(t *testing.T) {
		u := newExUpstream(t, exAnswer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n"))
		tr, _ := newTransport(t, Options{})
		for i := range 2 {
			s, err := tr.Exchange(context.Background(), false, u.host(), exReq("GET", "/", "h"), exResp())
			if !errors.Is(err, errUnexpected101) {
				if err == nil {
					s.Close()
				}
				t.Fatalf("exchange %d: error %v, want errUnexpected101", i, err)
			}
		}
		if n := pooled(tr); n != 0 {
			t.Errorf("%d idle connections after 101, want 0", n)
		}
		if n := u.conns.Load(); n != 2 {
			t.Errorf("upstream saw %d connections, want 2 (no reuse after 101)", n)
		}
	})
}

// exHead is a complete response head of about size bytes with a body "ok".
func exHead(size int) string {
	var sb strings.Builder
	sb.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
	for i := 0; sb.Len() < size-1100; i++ {
		fmt.Fprintf(&sb, "X-Pad-%d: %s\r\n", i, exPattern(fmt.Sprint(i), 1000))
	}
	sb.WriteString("\r\nok")
	return sb.String()
}

func TestExchangeHeadSize(t *testing.T) {
	endless := func(_, _ int, _ string, c net.Conn) bool {
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\n"); err != nil {
			return false
		}
		line := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
		for range 200 { // 200 KB of head, never ended; then the connection stays open
			if _, err := io.WriteString(c, line); err != nil {
				return false
			}
		}
		return true
	}
	cases := []struct {
		name    string
		handle  func(int, int, string, net.Conn) bool
		opts    Options
		ok      bool
		wantErr error
	}{
		{"12 KiB", exAnswer(exHead(12 << 10)), Options{}, true, nil},
		{"12 KiB, in small writes", func(_, _ int, _ string, c net.Conn) bool {
			h := exHead(12 << 10)
			for len(h) > 0 {
				n := min(len(h), 700)
				if _, err := io.WriteString(c, h[:n]); err != nil {
					return false
				}
				h = h[n:]
				time.Sleep(time.Millisecond)
			}
			return true
		}, Options{}, true, nil},
		{"20 KiB", exAnswer(exHead(20 << 10)), Options{}, false, nil},
		{"endless", endless, Options{}, false, nil},
		{"12 KiB above MaxResponseHeaderBytes", exAnswer(exHead(12 << 10)), Options{MaxResponseHeaderBytes: 4 << 10}, false, errHeaderTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := newExUpstream(t, tc.handle)
			tr, _ := newTransport(t, tc.opts)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp := exResp()
			start := time.Now()
			s, err := tr.Exchange(ctx, false, u.host(), exReq("GET", "/", "h"), resp)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				body, err := exReadAll(s)
				s.Close()
				if err != nil || body != "ok" {
					t.Fatalf("body %q, %v", body, err)
				}
				if v := resp.Header.Peek("X-Pad-10"); string(v) != exPattern("10", 1000) {
					t.Errorf("X-Pad-10 of %d bytes, want the 1000 sent", len(v))
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("an oversized head was accepted")
			}
			if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the exchange hung until its context ended (%v after %v)", err, time.Since(start))
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if n := pooled(tr); n != 0 {
				t.Errorf("%d idle connections, want 0", n)
			}
		})
	}
}

func TestExchangeContext(t *testing.T) {
	// Both ways a round trip watches its context: context.AfterFunc, and
	// the hook of a context that offers one (Hooker, the gateway's fast
	// path).
	for _, kind := range []string{"afterfunc", "hooker"} {
		for _, raw := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/raw=%v", kind, raw), func(t *testing.T) { testExchangeContext(t, kind == "hooker", raw) })
		}
	}
}

// testHooker is a Hooker over a standard context, counting its hooks.
type testHooker struct {
	context.Context
	mu     sync.Mutex
	hook   func()
	state  int // 0 none, 1 set, 2 ran
	hooked int
}

// withCtx returns a context and its cancel function: a standard one, or a
// testHooker over it when hooker is set.
func withCtx(parent context.Context, hooker bool) (context.Context, context.CancelFunc, *testHooker) {
	ctx, cancel := context.WithCancel(parent)
	if !hooker {
		return ctx, cancel, nil
	}
	h := &testHooker{Context: ctx}
	context.AfterFunc(ctx, h.fire)
	return h, cancel, h
}

func (h *testHooker) fire() {
	h.mu.Lock()
	f := h.hook
	if h.state != 1 {
		f = nil
	} else {
		h.state = 2
	}
	h.mu.Unlock()
	if f != nil {
		f()
	}
}

func (h *testHooker) Hook(f func()) bool {
	h.mu.Lock()
	if h.state == 1 {
		h.mu.Unlock()
		return false
	}
	h.hooked++
	if h.Err() != nil {
		h.state = 2
		h.mu.Unlock()
		f()
		return true
	}
	h.hook, h.state = f, 1
	h.mu.Unlock()
	return true
}

func (h *testHooker) Unhook() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	ran := h.state == 2
	h.hook, h.state = nil, 0
	return !ran
}

// checkHooked fails unless the round trip removed h's hook, and, when
// used is set, unless it used it (an exchange whose context has already
// ended may stop before it sets one).
func checkHooked(t *testing.T, h *testHooker, used bool) {
	t.Helper()
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if used && h.hooked == 0 {
		t.Error("the exchange did not use the context's hook")
	}
	if h.state == 1 {
		t.Error("the hook is still set after the exchange")
	}
}

func testExchangeContext(t *testing.T, hooker, raw bool) {
	s, started := newHoldingServer(t)
	tr, _ := newTransport(t, Options{ResponseHeaderTimeout: time.Minute})
	host := exHost(s.Server)

	t.Run("canceled before the head", func(t *testing.T) {
		ctx, cancel, h := withCtx(context.Background(), hooker)
		go func() { <-started; cancel() }()
		start := time.Now()
		st, err := exGet(ctx, tr, host, exReq("GET", "/before", "h"), exResp(), raw)
		if !errors.Is(err, context.Canceled) {
			if err == nil {
				st.Close()
			}
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the canceled exchange took %v", d)
		}
		checkHooked(t, h, true)
	})
	t.Run("canceled mid body", func(t *testing.T) {
		ctx, cancel, h := withCtx(context.Background(), hooker)
		defer cancel()
		st, err := exGet(ctx, tr, host, exReq("GET", "/mid", "h"), exResp(), raw)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		<-started
		buf := make([]byte, 5)
		if _, err := io.ReadFull(st, buf); err != nil || string(buf) != "first" {
			t.Fatalf("first part %q, %v", buf, err)
		}
		readErr := make(chan error, 1)
		go func() {
			_, err := st.Read(buf) // blocks: nothing more comes
			readErr <- err
		}()
		time.Sleep(20 * time.Millisecond)
		cancel()
		select {
		case err := <-readErr:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("body read error %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the body read did not end after the cancellation")
		}
		if _, err := st.Read(buf); !errors.Is(err, context.Canceled) {
			t.Errorf("next Read: %v, want context.Canceled again", err)
		}
		checkHooked(t, h, true)
	})
	t.Run("deadline", func(t *testing.T) {
		tctx, tcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer tcancel()
		ctx, cancel, h := withCtx(tctx, hooker)
		defer cancel()
		st, err := exGet(ctx, tr, host, exReq("GET", "/before", "h"), exResp(), raw)
		<-started
		if !errors.Is(err, context.DeadlineExceeded) {
			if err == nil {
				st.Close()
			}
			t.Fatalf("error %v, want context.DeadlineExceeded", err)
		}
		checkHooked(t, h, true)
	})
	t.Run("already canceled", func(t *testing.T) {
		ctx, cancel, h := withCtx(context.Background(), hooker)
		cancel()
		st, err := exGet(ctx, tr, host, exReq("GET", "/before", "h"), exResp(), raw)
		if !errors.Is(err, context.Canceled) {
			if err == nil {
				st.Close()
			}
			t.Fatalf("error %v, want context.Canceled", err)
		}
		checkHooked(t, h, false)
	})
	t.Run("not canceled", func(t *testing.T) {
		ctx, cancel, h := withCtx(context.Background(), hooker)
		defer cancel()
		s2 := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") })
		for range 2 {
			st, err := exGet(ctx, tr, exHost(s2.Server), exReq("GET", "/", "h"), exResp(), raw)
			if err != nil {
				t.Fatal(err)
			}
			body, err := exReadAll(st)
			st.Close()
			if err != nil || body != "fine" {
				t.Fatalf("body %q, %v", body, err)
			}
		}
		checkHooked(t, h, true)
	})
	if n := pooled(tr); n != 1 {
		t.Errorf("%d idle connections after interrupted exchanges and two whole ones, want 1", n)
	}
}

func TestExchangeCanceledAfterHeadNotPooled(t *testing.T) {
	// The whole answer arrives with the head: the body reads to EOF from
	// the buffer although the cancellation moved the deadline into the
	// past; that connection must not be pooled.
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "small") })
	set := make(chan time.Time, 4)
	var d net.Dialer
	tr, _ := newTransport(t, Options{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &deadlineConn{Conn: c, set: set}, nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	st, err := tr.Exchange(ctx, false, exHost(s.Server), exReq("GET", "/", "h"), exResp())
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if d := <-set; !d.Before(time.Now()) {
		t.Fatalf("cancellation set the deadline %v, want one in the past", d)
	}
	body, err := exReadAll(st)
	st.Close()
	if err != nil || body != "small" {
		t.Fatalf("body %q, %v", body, err)
	}
	if n := pooled(tr); n != 0 {
		t.Errorf("%d idle connections, want 0: the canceled one was pooled", n)
	}
}

func TestExchangeResponseHeaderTimeout(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw=%v", raw), func(t *testing.T) { testExchangeResponseHeaderTimeout(t, raw) })
	}
}

func testExchangeResponseHeaderTimeout(t *testing.T, raw bool) {
	t.Run("no byte of a head", func(t *testing.T) {
		release := make(chan struct{})
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) { <-release })
		t.Cleanup(func() { close(release) })
		tr, _ := newTransport(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond})
		start := time.Now()
		st, err := exGet(context.Background(), tr, exHost(s.Server), exReq("GET", "/", "h"), exResp(), raw)
		if err == nil {
			st.Close()
			t.Fatal("no error")
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v matches a context error", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("timed out after %v", d)
		}
		if n := pooled(tr); n != 0 {
			t.Errorf("%d idle connections, want 0", n)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("the header timeout before the first byte gives %v (%T), not a net.Error with Timeout: "+
				"fasthttp's ErrTimeout has no Temporary method, so abort's errors.As(err, &net.Error) misses it", err, err)
		}
	})
	t.Run("half a head", func(t *testing.T) {
		u := newExUpstream(t, exAnswer("HTTP/1.1 200 OK\r\nContent-Len"))
		tr, _ := newTransport(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond})
		st, err := exGet(context.Background(), tr, u.host(), exReq("GET", "/", "h"), exResp(), raw)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			if err == nil {
				st.Close()
			}
			t.Fatalf("error %v (%T), want a net.Error with Timeout", err, err)
		}
	})
	t.Run("not applied to the body", func(t *testing.T) {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "01234")
			w.(http.Flusher).Flush()
			time.Sleep(300 * time.Millisecond)
			io.WriteString(w, "56789")
		})
		tr, _ := newTransport(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond})
		for range 2 {
			if _, body := exDoMode(t, tr, exHost(s.Server), exReq("GET", "/", "h"), raw); body != "0123456789" {
				t.Fatalf("body %q", body)
			}
		}
		if n := s.conns.Load(); n != 1 {
			t.Errorf("server saw %d connections, want 1", n)
		}
	})
}

func TestExchangeIdleClosedByUpstream(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw=%v", raw), func(t *testing.T) {
			s := newServer(t, echoPath)
			tr, _ := newTransport(t, Options{})
			exDoMode(t, tr, exHost(s.Server), exReq("GET", "/a", "h"), raw)
			s.CloseClientConnections()
			time.Sleep(20 * time.Millisecond) // the FIN arrives
			if _, body := exDoMode(t, tr, exHost(s.Server), exReq("GET", "/b", "h"), raw); body != "/b" {
				t.Fatalf("body %q", body)
			}
			if n := s.conns.Load(); n != 2 {
				t.Errorf("server saw %d connections, want 2", n)
			}
		})
	}
}

func TestExchangeRetry(t *testing.T) {
	// newRawServer closes its first connection on the second request
	// without an answer: the upstream closing an idle connection just as
	// a request arrives.
	t.Run("GET is retried", func(t *testing.T) {
		s := newRawServer(t)
		tr, _ := newTransport(t, Options{})
		host := strings.TrimPrefix(s.url(), "http://")
		exDo(t, tr, host, exReq("GET", "/", "h"))
		if resp, body := exDo(t, tr, host, exReq("GET", "/", "h")); resp.StatusCode() != 200 || body != "ok" {
			t.Fatalf("%d %q", resp.StatusCode(), body)
		}
		if got, want := strings.Join(s.log(), " "), "0:GET 0:GET 1:GET"; got != want {
			t.Errorf("server saw %q, want %q", got, want)
		}
	})
	t.Run("POST is not", func(t *testing.T) {
		s := newRawServer(t)
		tr, _ := newTransport(t, Options{})
		host := strings.TrimPrefix(s.url(), "http://")
		exDo(t, tr, host, exReq("GET", "/", "h"))
		if st, err := tr.Exchange(context.Background(), false, host, exReq("POST", "/", "h"), exResp()); err == nil {
			st.Close()
			t.Fatal("POST on a connection the upstream closed succeeded; want an error")
		}
		if got, want := strings.Join(s.log(), " "), "0:GET 0:POST"; got != want {
			t.Errorf("server saw %q, want %q (the POST sent once)", got, want)
		}
	})
	t.Run("not retried on a new connection", func(t *testing.T) {
		// A fresh connection that fails is not retried: the error shows.
		u := newExUpstream(t, func(_, _ int, _ string, _ net.Conn) bool { return false })
		tr, _ := newTransport(t, Options{})
		if st, err := tr.Exchange(context.Background(), false, u.host(), exReq("GET", "/", "h"), exResp()); err == nil {
			st.Close()
			t.Fatal("an exchange the upstream never answered succeeded")
		}
		if n := u.conns.Load(); n != 1 {
			t.Errorf("upstream saw %d connections, want 1", n)
		}
	})
}

func TestExchangeExtraBytesNotReadLater(t *testing.T) {
	// The upstream writes more after its first answer: either with it (left
	// in the read buffer) or later, while the connection is idle. Neither
	// may be read as the answer to the next request.
	extras := map[string]string{
		"a second answer": "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale",
		"garbage":         "\x00\x01garbage\r\n",
	}
	for name, extra := range extras {
		for _, late := range []bool{false, true} {
			for _, raw := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/late=%v/raw=%v", name, late, raw), func(t *testing.T) {
					sendExtra, stop := make(chan struct{}), make(chan struct{})
					u := newExUpstream(t, func(id, n int, _ string, c net.Conn) bool {
						answer := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nconn%d-%d", id, n)
						if id != 0 {
							_, err := io.WriteString(c, answer)
							return err == nil
						}
						if !late {
							_, err := io.WriteString(c, answer+extra)
							return err == nil
						}
						if _, err := io.WriteString(c, answer); err != nil {
							return false
						}
						select {
						case <-sendExtra:
						case <-stop:
						}
						_, err := io.WriteString(c, extra)
						return err == nil
					})
					t.Cleanup(func() { close(stop) }) // before the upstream's cleanup, which waits for the handler
					tr, _ := newTransport(t, Options{})
					if _, body := exDoMode(t, tr, u.host(), exReq("GET", "/", "h"), raw); body != "conn0-0" {
						t.Fatalf("first body %q", body)
					}
					if late {
						tr.mu.Lock()
						var c *conn
						for _, l := range tr.idle {
							if len(l.conns) == 1 {
								c = l.conns[0]
							}
						}
						tr.mu.Unlock()
						if c == nil {
							t.Fatal("the first connection was not pooled")
						}
						close(sendExtra)
						deadline := time.Now().Add(30 * time.Second)
						for usable(c) {
							if time.Now().After(deadline) {
								t.Fatal("the extra bytes never arrived")
							}
							time.Sleep(time.Millisecond)
						}
					}
					if resp, body := exDoMode(t, tr, u.host(), exReq("GET", "/", "h"), raw); resp.StatusCode() != 200 || body != "conn1-0" {
						t.Fatalf("second exchange answered %d %q, want conn1-0 from a new connection", resp.StatusCode(), body)
					}
				})
			}
		}
	}
}

func TestExchangeBodyCutOff(t *testing.T) {
	cases := []struct {
		name, raw, got string
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", "0123456789"},
		{"content-length, head only", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", ""},
		{"mid chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123", "0123"},
		{"no last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "hello"},
		{"no end of trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n", "hello"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := newExUpstream(t, func(_, _ int, _ string, c net.Conn) bool {
				io.WriteString(c, tc.raw)
				return false // then close
			})
			tr, _ := newTransport(t, Options{})
			st, err := tr.Exchange(context.Background(), false, u.host(), exReq("GET", "/", "h"), exResp())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			body, err := io.ReadAll(st)
			if err == nil {
				t.Fatalf("a cut-off body read as complete: %q", body)
			}
			if string(body) != tc.got {
				t.Errorf("body %q before the error, want %q", body, tc.got)
			}
			if n, err2 := st.Read(make([]byte, 1)); n != 0 || err2 == nil || err2 == io.EOF {
				t.Errorf("Read after the error: %d, %v; want 0 and an error", n, err2)
			}
			if n := pooled(tr); n != 0 {
				t.Errorf("%d idle connections, want 0", n)
			}
		})
	}
}

func TestExchangeConcurrent(t *testing.T) {
	// Each request gets its own body: its path repeated to a length that
	// depends on it, sent with a length or chunked.
	bodyFor := func(p string, i int) string { return exPattern(p, 1+(i*997)%40_000) }
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		var i int
		fmt.Sscanf(r.URL.Query().Get("i"), "%d", &i)
		b := bodyFor(r.URL.Path, i)
		if i%2 == 0 {
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			io.WriteString(w, b)
			return
		}
		half := len(b) / 2
		io.WriteString(w, b[:half])
		w.(http.Flusher).Flush()
		io.WriteString(w, b[half:])
	})
	tr, _ := newTransport(t, Options{MaxIdleConnsPerHost: 4})
	host := exHost(s.Server)
	const workers, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p := fmt.Sprintf("/w%d/%d", w, i)
				n := w*each + i
				resp := exResp()
				st, err := tr.Exchange(context.Background(), false, host, exReq("GET", fmt.Sprintf("%s?i=%d", p, n), "h"), resp)
				if err != nil {
					errs <- fmt.Errorf("%s: %v", p, err)
					return
				}
				body, err := exReadAll(st)
				st.Close()
				if want := bodyFor(p, n); err != nil || body != want || resp.StatusCode() != 200 {
					errs <- fmt.Errorf("%s: %d, %d bytes (%.30q), %v; want %d bytes (%.30q)",
						p, resp.StatusCode(), len(body), body, err, len(want), want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := pooled(tr); n > 4 || n == 0 {
		t.Errorf("%d idle connections, want 1 to MaxIdleConnsPerHost 4", n)
	}
}

func TestExchangeHTTPS(t *testing.T) {
	s := httptest.NewUnstartedServer(http.HandlerFunc(echoPath))
	var conns atomic.Int32
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	tr, _ := newTransport(t, Options{TLSClientConfig: &tls.Config{RootCAs: pool}})
	for _, p := range []string{"/x", "/y"} {
		resp := exResp()
		st, err := tr.Exchange(context.Background(), true, exHost(s), exReq("GET", p, "example.com"), resp)
		if err != nil {
			t.Fatal(err)
		}
		body, err := exReadAll(st)
		st.Close()
		if err != nil || body != p {
			t.Fatalf("body %q, %v; want %q", body, err, p)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("server saw %d connections, want 1", n)
	}
	// The same host over plain HTTP is another pool.
	// Go's TLS server answers a plain request with 400.
	resp := exResp()
	if st, err := tr.Exchange(context.Background(), false, exHost(s), exReq("GET", "/z", "h"), resp); err == nil {
		body, _ := io.ReadAll(st)
		st.Close()
		if resp.StatusCode() == 200 || string(body) == "/z" {
			t.Errorf("plain HTTP to the TLS server answered %d %q: it took the TLS connection", resp.StatusCode(), body)
		}
	}
}

// TestExchangeGet: a head given as bytes goes on the wire as it is, the
// connection is pooled and reused after the answer, and a GET on a
// connection the upstream closed meanwhile is retried on a new one, as
// with Exchange.
func TestExchangeGet(t *testing.T) {
	u := newExUpstream(t, exAnswer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	tr, _ := newTransport(t, Options{})
	heads := []string{
		"GET /a?b=1 HTTP/1.1\r\nHost: up.example\r\nX-Sekisho-User: u1\r\nx-lower: kept as is\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
	}
	for i, head := range heads {
		st, err := tr.ExchangeGet(context.Background(), false, u.host(), []byte(head), exResp(), nil)
		if err != nil {
			t.Fatalf("head %d: %v", i, err)
		}
		if body, err := exReadAll(st); err != nil || body != "ok" {
			t.Fatalf("head %d: body %q, %v", i, body, err)
		}
		if seen := u.seen(); len(seen) != i+1 || seen[i] != head {
			t.Fatalf("upstream received %q, want %q last", seen, head)
		}
		if n := pooled(tr); n != 1 {
			t.Errorf("head %d: %d idle connections, want 1", i, n)
		}
	}
	if n := u.conns.Load(); n != 1 {
		t.Errorf("upstream saw %d connections for two exchanges, want 1", n)
	}

	s := newRawServer(t)
	tr2, _ := newTransport(t, Options{})
	host := strings.TrimPrefix(s.url(), "http://")
	for range 2 {
		st, err := tr2.ExchangeGet(context.Background(), false, host, []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), exResp(), new(Stream))
		if err != nil {
			t.Fatal(err)
		}
		if body, err := exReadAll(st); err != nil || body != "ok" {
			t.Fatalf("body %q, %v", body, err)
		}
	}
	if got, want := strings.Join(s.log(), " "), "0:GET 0:GET 1:GET"; got != want {
		t.Errorf("server saw %q, want %q (the second GET retried on a new connection)", got, want)
	}
}

// TestExchangeHeaderDeadlineLeftSet: the header deadline of a response
// read whole with its head is left set on the connection (headRead saves
// the timer update); a connection idle past it is still reused, and a
// body that does not arrive with its head is not cut by it.
func TestExchangeHeaderDeadlineLeftSet(t *testing.T) {
	const timeout = 100 * time.Millisecond
	t.Run("reused after the deadline passed", func(t *testing.T) {
		s := newServer(t, echoPath)
		tr, _ := newTransport(t, Options{ResponseHeaderTimeout: timeout})
		for i := range 3 {
			p := fmt.Sprintf("/r%d", i)
			if _, body := exDo(t, tr, exHost(s.Server), exReq("GET", p, "h")); body != p {
				t.Fatalf("GET %s: body %q", p, body)
			}
			time.Sleep(3 * timeout)
		}
		if n := s.conns.Load(); n != 1 {
			t.Errorf("server saw %d connections, want 1 (an idle connection past the old deadline was dropped)", n)
		}
	})
	t.Run("a late body is not cut", func(t *testing.T) {
		u := newExUpstream(t, func(_, _ int, _ string, c net.Conn) bool {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
			time.Sleep(3 * timeout)
			io.WriteString(c, "cd")
			return true
		})
		tr, _ := newTransport(t, Options{ResponseHeaderTimeout: timeout})
		st, err := tr.ExchangeGet(context.Background(), false, u.host(), []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), exResp(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if body, err := exReadAll(st); err != nil || body != "abcd" {
			t.Fatalf("body %q, %v; want abcd", body, err)
		}
	})
}

// TestBeginKeepsHeaderDeadline: a round trip keeps the header deadline an
// earlier one left set while it ends between 7/8 of the timeout and the
// timeout from the time the connection was taken, and sets its own
// otherwise; a kept deadline still ends a wait for a head that never
// comes, on a reused connection.
func TestBeginKeepsHeaderDeadline(t *testing.T) {
	const h = 800 * time.Millisecond
	tr, _ := newTransport(t, Options{ResponseHeaderTimeout: h})
	a, _ := testnet.TCPPair(t)
	c := &conn{raw: a, nc: a}
	t0 := time.Now()
	step := func(at time.Time, want time.Time) {
		t.Helper()
		c.takenAt = at
		stop := tr.begin(context.Background(), c)
		stop.stop()
		if !c.rdl.Equal(want) {
			t.Fatalf("taken at +%v: deadline +%v, want +%v", at.Sub(t0), c.rdl.Sub(t0), want.Sub(t0))
		}
		if !c.takenAt.IsZero() {
			t.Fatal("begin left takenAt")
		}
	}
	step(t0, t0.Add(h))                                      // none set: its own
	step(t0.Add(h/16), t0.Add(h))                            // ends 15/16 h away: kept
	step(t0.Add(h/4), t0.Add(h/4+h))                         // would end 3/4 h away: its own
	step(t0.Add(h/4-time.Second), t0.Add(h/4-time.Second+h)) // ends later than h away: its own

	// End to end: the second request's head never comes; the deadline the
	// first left (kept) ends the wait.
	release := make(chan struct{})
	var n atomic.Int32
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 1 {
			<-release
		}
		io.WriteString(w, "ok")
	})
	t.Cleanup(func() { close(release) }) // before the server's Close, which waits for the handlers
	for _, raw := range []bool{false, true} {
		n.Store(0)
		tr, _ := newTransport(t, Options{ResponseHeaderTimeout: h})
		if _, body := exDoMode(t, tr, exHost(s.Server), exReq("GET", "/", "h"), raw); body != "ok" {
			t.Fatalf("body %q", body)
		}
		start := time.Now()
		st, err := exGet(context.Background(), tr, exHost(s.Server), exReq("GET", "/", "h"), exResp(), raw)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			if err == nil {
				st.Close()
			}
			t.Fatalf("raw=%v: error %v, want a timeout", raw, err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("raw=%v: timed out after %v", raw, d)
		}
	}
}
