package h1transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingRT counts the requests handed to the fallback.
type countingRT struct {
	n  atomic.Int32
	rt http.RoundTripper
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// server is an httptest upstream that counts the connections it accepted.
type server struct {
	*httptest.Server
	conns atomic.Int32
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func newTransport(t *testing.T, opts Options) (*Transport, *countingRT) {
	t.Helper()
	fb := &countingRT{rt: &http.Transport{}}
	opts.Fallback = fb
	tr := New(opts)
	t.Cleanup(tr.CloseIdleConnections)
	return tr, fb
}

// get sends a body-less request and returns the whole body.
func do(t *testing.T, rt http.RoundTripper, method, u string, edit func(*http.Request)) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, u, err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatalf("closing body: %v", err)
	}
	return resp, string(b)
}

func echoPath(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }

func TestKeepAliveReuse(t *testing.T) {
	s := newServer(t, echoPath)
	tr, fb := newTransport(t, Options{})
	for i := range 5 {
		p := fmt.Sprintf("/r%d", i)
		resp, got := do(t, tr, "GET", s.URL+p, nil)
		if resp.StatusCode != 200 || got != p {
			t.Fatalf("GET %s: %d %q", p, resp.StatusCode, got)
		}
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("server saw %d connections for 5 sequential requests, want 1", n)
	}
	if n := fb.n.Load(); n != 0 {
		t.Errorf("fallback took %d requests, want 0", n)
	}
}

func TestConnectionClose(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		})
		tr, _ := newTransport(t, Options{})
		for range 2 {
			if resp, got := do(t, tr, "GET", s.URL, nil); !resp.Close || got != "bye" {
				t.Fatalf("resp.Close=%v body %q", resp.Close, got)
			}
		}
		if n := s.conns.Load(); n != 2 {
			t.Errorf("server saw %d connections, want 2 (no reuse after Connection: close)", n)
		}
	})
	t.Run("client", func(t *testing.T) {
		var sawClose atomic.Int32
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Close {
				sawClose.Add(1)
			}
			io.WriteString(w, "ok")
		})
		tr, _ := newTransport(t, Options{})
		for range 2 {
			do(t, tr, "GET", s.URL, func(r *http.Request) { r.Close = true })
		}
		if n := s.conns.Load(); n != 2 {
			t.Errorf("server saw %d connections, want 2 (req.Close honoured)", n)
		}
		if n := sawClose.Load(); n != 2 {
			t.Errorf("server saw Connection: close on %d requests, want 2", n)
		}
	})
}

func TestChunkedWithTrailer(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		for i := range 3 {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", "3")
	})
	tr, _ := newTransport(t, Options{})
	for range 2 {
		resp, got := do(t, tr, "GET", s.URL, nil)
		if got != "part0;part1;part2;" {
			t.Fatalf("body %q", got)
		}
		if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("TransferEncoding %q, want chunked", resp.TransferEncoding)
		}
		if v := resp.Trailer.Get("X-Sum"); v != "3" {
			t.Errorf("trailer X-Sum %q, want 3", v)
		}
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("server saw %d connections, want 1", n)
	}
}

func TestResponsesWithoutBody(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.Header().Set("ETag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "1000")
			if r.Method != "HEAD" {
				io.WriteString(w, strings.Repeat("a", 1000))
			}
		}
	})
	tr, _ := newTransport(t, Options{})
	cases := []struct {
		method, path string
		code         int
		length       int64
	}{
		{"HEAD", "/", 200, 1000},
		{"GET", "/204", 204, 0},
		{"GET", "/304", 304, 0},
		{"GET", "/", 200, 1000},
	}
	for _, tc := range cases {
		resp, got := do(t, tr, tc.method, s.URL+tc.path, nil)
		if resp.StatusCode != tc.code || resp.ContentLength != tc.length {
			t.Errorf("%s %s: %d length %d, want %d length %d", tc.method, tc.path, resp.StatusCode, resp.ContentLength, tc.code, tc.length)
		}
		if want := int(tc.length); tc.method == "HEAD" || tc.code != 200 {
			if got != "" {
				t.Errorf("%s %s: body %q, want none", tc.method, tc.path, got)
			}
		} else if len(got) != want {
			t.Errorf("%s %s: body of %d bytes, want %d", tc.method, tc.path, len(got), want)
		}
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("server saw %d connections, want 1", n)
	}
}

func TestEarlyCloseNotReused(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 64<<10))
	})
	tr, _ := newTransport(t, Options{})
	req, _ := http.NewRequest("GET", s.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp.Body.Close() // twice: must be harmless
	if _, err := resp.Body.Read(make([]byte, 1)); !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Errorf("Read after Close: %v, want http.ErrBodyReadAfterClose", err)
	}
	if _, got := do(t, tr, "GET", s.URL, nil); len(got) != 64<<10 {
		t.Fatalf("second body %d bytes", len(got))
	}
	if n := s.conns.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2 (a half-read connection is not reused)", n)
	}
	if n := pooled(tr); n != 1 {
		t.Errorf("%d idle connections, want 1", n)
	}
}

// pooled counts the idle connections of tr.
func pooled(tr *Transport) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, l := range tr.idle {
		n += len(l.conns)
	}
	return n
}

func TestServerClosedIdleConnection(t *testing.T) {
	s := newServer(t, echoPath)
	tr, _ := newTransport(t, Options{})
	do(t, tr, "GET", s.URL+"/a", nil)
	s.CloseClientConnections()
	if _, got := do(t, tr, "GET", s.URL+"/b", nil); got != "/b" {
		t.Fatalf("body %q", got)
	}
	if n := s.conns.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2", n)
	}
}

// rawServer is an upstream on a bare listener that parses requests with
// http.ReadRequest and answers "ok", except that on its first connection
// it reads the second request and closes without an answer: the race of
// an upstream closing an idle connection just as a request arrives.
type rawServer struct {
	ln    net.Listener
	mu    sync.Mutex
	seen  []string // "conn#:METHOD"
	conns int
	wg    sync.WaitGroup
}

func newRawServer(t *testing.T) *rawServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			id := s.conns
			s.conns++
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 0; ; n++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					s.mu.Lock()
					s.seen = append(s.seen, fmt.Sprintf("%d:%s", id, req.Method))
					s.mu.Unlock()
					if id == 0 && n == 1 {
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() }

func (s *rawServer) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func TestRetryOnReusedConnection(t *testing.T) {
	t.Run("GET is retried", func(t *testing.T) {
		s := newRawServer(t)
		tr, _ := newTransport(t, Options{})
		do(t, tr, "GET", s.url(), nil)
		if _, got := do(t, tr, "GET", s.url(), nil); got != "ok" {
			t.Fatalf("body %q", got)
		}
		if got, want := strings.Join(s.log(), " "), "0:GET 0:GET 1:GET"; got != want {
			t.Errorf("server saw %q, want %q", got, want)
		}
	})
	t.Run("POST is not", func(t *testing.T) {
		s := newRawServer(t)
		tr, fb := newTransport(t, Options{})
		do(t, tr, "GET", s.url(), nil)
		req, _ := http.NewRequest("POST", s.url(), nil)
		if resp, err := tr.RoundTrip(req); err == nil {
			resp.Body.Close()
			t.Fatal("POST on a connection the upstream closed succeeded; want an error")
		}
		if got, want := strings.Join(s.log(), " "), "0:GET 0:POST"; got != want {
			t.Errorf("server saw %q, want %q (the POST sent once)", got, want)
		}
		if n := fb.n.Load(); n != 0 {
			t.Errorf("fallback took %d requests; a body-less POST is the fast path's", n)
		}
	})
}

func TestResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	t.Cleanup(func() { close(release) }) // before s.Close, which waits for handlers
	tr, _ := newTransport(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond})
	req, _ := http.NewRequest("GET", s.URL, nil)
	_, err := tr.RoundTrip(req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("error %v (%T), want a net.Error with Timeout", err, err)
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("error %v matches context.Canceled", err)
	}
}

// newHoldingServer answers nothing (on /mid: the first bytes of a body)
// until the test ends or the request's context does; started receives
// when a request has arrived.
func newHoldingServer(t *testing.T) (s *server, started <-chan struct{}) {
	release := make(chan struct{})
	st := make(chan struct{}, 1)
	s = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/mid" {
			io.WriteString(w, "first")
			w.(http.Flusher).Flush()
		}
		st <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	return s, st
}

func TestContextCancel(t *testing.T) {
	s, started := newHoldingServer(t)
	tr, _ := newTransport(t, Options{ResponseHeaderTimeout: time.Minute})

	t.Run("before headers", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/before", nil)
		go func() { <-started; cancel() }()
		_, err := tr.RoundTrip(req)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	})
	t.Run("mid body", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/mid", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		<-started
		buf := make([]byte, 5)
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
			t.Fatalf("first part %q, %v", buf, err)
		}
		cancel()
		_, err = resp.Body.Read(buf)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("body read error %v, want context.Canceled", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/before", nil)
		go func() { <-started }()
		_, err := tr.RoundTrip(req)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want context.DeadlineExceeded", err)
		}
	})
	if n := pooled(tr); n != 0 {
		t.Errorf("%d idle connections after interrupted round trips, want 0", n)
	}
}

func TestFallback(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	})
	tr, fb := newTransport(t, Options{})
	cases := []struct {
		name string
		req  func() *http.Request
		fast bool
	}{
		{"GET", func() *http.Request { r, _ := http.NewRequest("GET", s.URL, nil); return r }, true},
		{"POST without body", func() *http.Request { r, _ := http.NewRequest("POST", s.URL, nil); return r }, true},
		{"GET with NoBody", func() *http.Request { r, _ := http.NewRequest("GET", s.URL, http.NoBody); return r }, true},
		{"POST with body", func() *http.Request {
			r, _ := http.NewRequest("POST", s.URL, strings.NewReader("data"))
			return r
		}, false},
		{"Upgrade", func() *http.Request {
			r, _ := http.NewRequest("GET", s.URL, nil)
			r.Header.Set("Upgrade", "websocket")
			return r
		}, false},
		{"Connection upgrade", func() *http.Request {
			r, _ := http.NewRequest("GET", s.URL, nil)
			r.Header.Set("Connection", "keep-alive, Upgrade")
			return r
		}, false},
		{"Expect", func() *http.Request {
			r, _ := http.NewRequest("GET", s.URL, nil)
			r.Header.Set("Expect", "100-continue")
			return r
		}, false},
		{"non-canonical expect", func() *http.Request {
			r, _ := http.NewRequest("GET", s.URL, nil)
			r.Header["expect"] = []string{"100-continue"}
			return r
		}, false},
		{"invalid header value", func() *http.Request {
			r, _ := http.NewRequest("GET", s.URL, nil)
			r.Header["X-Bad"] = []string{"a\x00b"}
			return r
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := fb.n.Load()
			resp, err := tr.RoundTrip(tc.req())
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if fell := fb.n.Load() != before; fell == tc.fast {
				t.Errorf("fallback taken = %v, want %v", fell, !tc.fast)
			}
		})
	}
}

func TestUserAgentSuppressed(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%v", r.Header["User-Agent"])
	})
	tr, _ := newTransport(t, Options{})
	if _, got := do(t, tr, "GET", s.URL, func(r *http.Request) { r.Header.Set("User-Agent", "") }); got != "[]" {
		t.Errorf("empty User-Agent sent as %s, want none", got)
	}
	if _, got := do(t, tr, "GET", s.URL, func(r *http.Request) { r.Header.Set("User-Agent", "ua/1") }); got != "[ua/1]" {
		t.Errorf("User-Agent sent as %s, want [ua/1]", got)
	}
}

func TestInformationalResponses(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "final")
	})
	tr, _ := newTransport(t, Options{})
	var got1xx []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got1xx = append(got1xx, code)
		if h.Get("Link") == "" {
			t.Errorf("1xx without its Link header")
		}
		return nil
	}}
	resp, body := do(t, tr, "GET", s.URL, func(r *http.Request) {
		*r = *r.WithContext(httptrace.WithClientTrace(r.Context(), trace))
	})
	if resp.StatusCode != 200 || body != "final" {
		t.Fatalf("%d %q, want 200 final", resp.StatusCode, body)
	}
	if fmt.Sprint(got1xx) != "[103]" {
		t.Errorf("1xx seen %v, want [103]", got1xx)
	}
}

func TestUnexpected101(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
		}
		io.Copy(io.Discard, c)
	}()
	tr, _ := newTransport(t, Options{})
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String(), nil)
	if resp, err := tr.RoundTrip(req); !errors.Is(err, errUnexpected101) {
		if err == nil {
			resp.Body.Close()
		}
		t.Fatalf("error %v, want errUnexpected101", err)
	}
}

func TestHTTPS(t *testing.T) {
	s := httptest.NewUnstartedServer(http.HandlerFunc(echoPath))
	var conns atomic.Int32
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the unknown-CA handshake error
	s.StartTLS()
	t.Cleanup(s.Close)

	t.Run("unknown CA", func(t *testing.T) {
		tr, _ := newTransport(t, Options{})
		req, _ := http.NewRequest("GET", s.URL, nil)
		if resp, err := tr.RoundTrip(req); err == nil {
			resp.Body.Close()
			t.Fatal("handshake with a server of an unknown CA succeeded")
		}
	})
	conns.Store(0)
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	tr, _ := newTransport(t, Options{TLSClientConfig: &tls.Config{RootCAs: pool}})
	for _, p := range []string{"/x", "/y"} {
		resp, got := do(t, tr, "GET", s.URL+p, nil)
		if got != p {
			t.Fatalf("body %q, want %q", got, p)
		}
		if resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" || resp.ProtoMajor != 1 {
			t.Fatalf("TLS %+v proto %s, want http/1.1 over TLS", resp.TLS, resp.Proto)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("server saw %d connections, want 1", n)
	}
}

func TestExtraResponseNotServedLater(t *testing.T) {
	// The upstream answers its first request twice. The second answer
	// arrives either with the first (left in the read buffer) or later,
	// while the connection is idle; neither may become the answer to the
	// next request.
	for _, late := range []bool{false, true} {
		t.Run(fmt.Sprintf("late=%v", late), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			sendSecond := make(chan struct{})
			var wg sync.WaitGroup
			defer wg.Wait()
			defer ln.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := 0; ; id++ {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer c.Close()
						br := bufio.NewReader(c)
						for {
							if _, err := http.ReadRequest(br); err != nil {
								return
							}
							first := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nconn%d-1", id)
							second := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale"
							if id != 0 {
								io.WriteString(c, first)
								continue
							}
							if !late {
								io.WriteString(c, first+second)
								continue
							}
							io.WriteString(c, first)
							<-sendSecond
							io.WriteString(c, second)
						}
					}()
				}
			}()
			tr, _ := newTransport(t, Options{})
			defer tr.CloseIdleConnections() // before wg.Wait: a pooled connection keeps a server goroutine
			u := "http://" + ln.Addr().String()
			if _, got := do(t, tr, "GET", u, nil); got != "conn0-1" {
				t.Fatalf("first body %q", got)
			}
			if late {
				if n := pooled(tr); n != 1 {
					t.Fatalf("%d idle connections, want 1", n)
				}
				close(sendSecond)
				// Wait until the stale answer reached the pooled socket.
				tr.mu.Lock()
				var c *conn
				for _, l := range tr.idle {
					c = l.conns[0]
				}
				tr.mu.Unlock()
				deadline := time.Now().Add(30 * time.Second)
				for usable(c) {
					if time.Now().After(deadline) {
						t.Fatal("the second answer never arrived")
					}
					time.Sleep(time.Millisecond)
				}
			}
			if _, got := do(t, tr, "GET", u, nil); got != "conn1-1" {
				t.Fatalf("second request answered with %q, want conn1-1 from a new connection", got)
			}
		})
	}
}

func TestCloseIdleConnections(t *testing.T) {
	s := newServer(t, echoPath)
	tr, _ := newTransport(t, Options{})
	do(t, tr, "GET", s.URL, nil)
	tr.CloseIdleConnections()
	if n := pooled(tr); n != 0 {
		t.Fatalf("%d idle connections after CloseIdleConnections", n)
	}
	do(t, tr, "GET", s.URL, nil)
	if n := s.conns.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	s := newServer(t, echoPath)
	tr, _ := newTransport(t, Options{IdleConnTimeout: 50 * time.Millisecond})
	do(t, tr, "GET", s.URL, nil)
	// The reaper closes the idle connection by itself.
	deadline := time.Now().Add(30 * time.Second)
	for pooled(tr) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle connection never reaped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	do(t, tr, "GET", s.URL, nil)
	if n := s.conns.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2", n)
	}
}

func TestConcurrent(t *testing.T) {
	s := newServer(t, echoPath)
	tr, _ := newTransport(t, Options{MaxIdleConnsPerHost: 4})
	const workers, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p := fmt.Sprintf("/w%d/%d", w, i)
				req, _ := http.NewRequest("GET", s.URL+p, nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != p {
					errs <- fmt.Errorf("%s: body %q, %v", p, b, err)
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
	if n := pooled(tr); n > 4 {
		t.Errorf("%d idle connections, more than MaxIdleConnsPerHost 4", n)
	}
}

func TestThroughReverseProxy(t *testing.T) {
	backend := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend-UA", fmt.Sprint(r.Header["User-Agent"]))
		fmt.Fprintf(w, "%s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
	})
	target, _ := url.Parse(backend.URL)
	tr, fb := newTransport(t, Options{})
	var proxyErrs atomic.Int32
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			proxyErrs.Add(1)
			t.Errorf("proxy error: %v", err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	front := httptest.NewServer(rp)
	t.Cleanup(front.Close)
	client := &http.Transport{}
	t.Cleanup(client.CloseIdleConnections)
	for i := range 3 {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/p%d?q=%d", front.URL, i, i), nil)
		req.Header.Set("User-Agent", "") // the client sends none
		resp, err := client.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("GET /p%d?q=%d", i, i); string(b) != want {
			t.Fatalf("body %q, want %q", b, want)
		}
		if ua := resp.Header.Get("X-Backend-UA"); ua != "[]" {
			t.Errorf("backend saw User-Agent %s, want none", ua)
		}
	}
	if n := backend.conns.Load(); n != 1 {
		t.Errorf("backend saw %d connections, want 1", n)
	}
	if n := fb.n.Load(); n != 0 {
		t.Errorf("fallback took %d requests, want 0", n)
	}
}

func TestResponseHeadersTooLarge(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
		for range 100 { // 100 KB of headers, never ending them
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	}()
	tr, _ := newTransport(t, Options{MaxResponseHeaderBytes: 16 << 10})
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String(), nil)
	if resp, err := tr.RoundTrip(req); !errors.Is(err, errHeaderTooLarge) {
		if err == nil {
			resp.Body.Close()
		}
		t.Fatalf("error %v, want errHeaderTooLarge", err)
	}
	ln.Close()
	<-done
}

func TestCloseDuringRead(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	tr, _ := newTransport(t, Options{})
	req, _ := http.NewRequest("GET", s.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(buf) // blocks: the server sends nothing more
		readErr <- err
	}()
	resp.Body.Close() // from another goroutine than the reader's
	if err := <-readErr; err == nil {
		t.Fatal("Read blocked on a closed body returned no error")
	}
	if n := pooled(tr); n != 0 {
		t.Errorf("%d idle connections, want 0", n)
	}
}

func TestReverseProxySeesCanceled(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	backend := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	target, _ := url.Parse(backend.URL)
	tr, _ := newTransport(t, Options{})
	proxyErr := make(chan error, 1)
	front := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:      func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport:    tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) { proxyErr <- err },
	})
	t.Cleanup(front.Close)
	client := &http.Transport{}
	t.Cleanup(client.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", front.URL, nil)
	go func() { <-started; cancel() }() // the client goes away while the upstream thinks
	if resp, err := client.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatal("the client's canceled request succeeded")
	}
	if err := <-proxyErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("the proxy's ErrorHandler saw %v, want context.Canceled", err)
	}
}

// deadlineConn reports each SetDeadline call on its channel.
type deadlineConn struct {
	net.Conn
	set chan time.Time
}

func (c *deadlineConn) SetDeadline(d time.Time) error {
	err := c.Conn.SetDeadline(d)
	c.set <- d
	return err
}

func TestCanceledAfterHeadersNotPooled(t *testing.T) {
	// The whole response arrives with the headers, so the body reads to
	// EOF from the buffer although the cancellation already moved the
	// connection's deadline into the past: that connection must not be
	// pooled, or its next request would fail at once.
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
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if d := <-set; !d.Before(time.Now()) {
		t.Fatalf("cancellation set the deadline %v, want one in the past", d)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "small" {
		t.Fatalf("body %q, %v", b, err)
	}
	if n := pooled(tr); n != 0 {
		t.Errorf("%d idle connections, want 0: the canceled one was pooled", n)
	}
}
