package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The fast path must never serve a request net/http's server would not
// serve the same way. FuzzFrontHead holds its head handling (scanHead,
// headOK, http.ReadRequest on the head alone, fastRequest) to the real
// net/http server's parse of the same bytes.

// refHeadEnd is the end of a request head as net/http's parser reads it:
// lines end at LF (a CR before it dropped), and the head ends after the
// first empty line after the request line; 0 if there is none.
func refHeadEnd(b []byte) int {
	start := 0
	for line := 0; ; line++ {
		j := bytes.IndexByte(b[start:], '\n')
		if j < 0 {
			return 0
		}
		l := b[start : start+j]
		start += j + 1
		if line > 0 && (len(l) == 0 || (len(l) == 1 && l[0] == '\r')) {
			return start
		}
	}
}

// describeRequest is the request as a handler sees it, for comparing two
// parses of the same bytes.
func describeRequest(r *http.Request) string {
	var hs []string
	for k, vv := range r.Header {
		hs = append(hs, fmt.Sprintf("%s: %q", k, vv))
	}
	slices.Sort(hs)
	return fmt.Sprintf("%s %q %q %s close=%t length=%d te=%q\n%s",
		r.Method, r.RequestURI, r.Host, r.Proto, r.Close, r.ContentLength, r.TransferEncoding, strings.Join(hs, "\n"))
}

// echoClient sends heads to an echo server on one kept connection.
type echoClient struct {
	mu   sync.Mutex
	addr string
	conn net.Conn
	br   *bufio.Reader
}

// do sends head and returns the status and body of the answer.
func (c *echoClient) do(head []byte) (int, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if c.conn == nil {
			conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
			if err != nil {
				return 0, "", err
			}
			c.conn, c.br = conn, bufio.NewReader(conn)
		}
		c.conn.SetDeadline(time.Now().Add(10 * time.Second))
		var resp *http.Response
		_, err := c.conn.Write(head)
		if err == nil {
			resp, err = http.ReadResponse(c.br, nil)
		}
		if err != nil {
			// A kept connection the server had closed: once more on a new one.
			c.conn.Close()
			c.conn = nil
			if attempt == 0 {
				continue
			}
			return 0, "", err
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.Close {
			c.conn.Close()
			c.conn = nil
		}
		return resp.StatusCode, string(b), err
	}
}

func FuzzFrontHead(f *testing.F) {
	for _, set := range [][]diffCase{frontDiffCases(), frontSmallHeadCases(), frontBareLFCases()} {
		for _, c := range set {
			f.Add([]byte(c.raw))
		}
	}
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /?q=1#f HTTP/1.1\r\nHost: a:80\r\nX: \t v \t\r\n\r\n",
		"GET //x HTTP/1.1\r\nHOST: a\r\nPragma: no-cache\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n",
		"GET / HTTP/01.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
		"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\tX: b\r\n\r\n",
		"GET / HTTP/1.1\r\n Host: a\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\r\n Host: b\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX-\xff: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: \xff\x7f\r\n\r\n",
		"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAA\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: b\r\n\r\n",
	} {
		f.Add([]byte(s))
	}

	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, describeRequest(r))
	}))
	f.Cleanup(echo.Close)
	client := &echoClient{addr: echo.Listener.Addr().String()}
	f.Cleanup(func() {
		if client.conn != nil {
			client.conn.Close()
		}
	})
	fr := &front{maxHeaderBytes: http.DefaultMaxHeaderBytes}
	metrics := newParkMetrics(prometheus.NewRegistry())

	f.Fuzz(func(t *testing.T, data []byte) {
		// scanHead ends a head where net/http's parser does, never past
		// what it was given or the limit, and never panics.
		for _, limit := range []int{frontReadSize, 64} {
			br := bufio.NewReaderSize(bytes.NewReader(data), frontReadSize)
			n, err := scanHead(br, limit)
			ref := refHeadEnd(data)
			switch {
			case err == nil:
				if n <= 0 || n > len(data) || n > limit || n != ref {
					t.Fatalf("limit %d: scanHead = %d of %d bytes, net/http's head ends at %d", limit, n, len(data), ref)
				}
			case errors.Is(err, errNotFast):
				if ref != 0 && ref <= limit && ref <= frontReadSize {
					t.Fatalf("limit %d: scanHead refused a head of %d bytes", limit, ref)
				}
			default: // the reader ran dry before a head ended
				if ref != 0 || len(data) >= limit {
					t.Fatalf("limit %d: scanHead: %v on %d bytes (head end %d)", limit, err, len(data), ref)
				}
			}
		}

		// The fast path's own decision, on a connection that holds data
		// and then ends.
		c1, c2 := net.Pipe()
		c2.Close()
		defer c1.Close()
		tc := &trackedConn{Conn: c1, pending: append([]byte(nil), data...)}
		br := bufio.NewReaderSize(tc, frontReadSize)
		n, err := scanHead(br, min(frontReadSize, fr.maxHeaderBytes))
		if err != nil {
			if errors.Is(err, errNotFast) {
				handOver(t, fr, metrics, tc, br, data)
			}
			return
		}
		req, ok := fr.parse(tc, &frontState{br: br}, n)
		if !ok {
			if tc.readTried {
				t.Fatalf("http.ReadRequest read past a head that passed headOK: %q", data[:n])
			}
			handOver(t, fr, metrics, tc, br, data)
			return
		}
		if rest, _ := br.Peek(br.Buffered()); !bytes.Equal(rest, data[n:min(len(data), frontReadSize)]) {
			t.Fatalf("after the head, %q is left, want %q", rest, data[n:])
		}

		// The fast path would serve it: net/http's server must accept the
		// same head and see the same request.
		status, body, err := client.do(data[:n])
		if err != nil {
			t.Fatalf("net/http's server on %q: %v", data[:n], err)
		}
		if want := describeRequest(req); status != http.StatusOK || body != want {
			t.Fatalf("head %q:\nnet/http's server: %d\n%s\nfast path:\n%s", data[:n], status, body, want)
		}
	})
}

// handOver hands tc over as the fast path does (to a parker that is shut
// down, so that the connection goes nowhere) and checks that what
// net/http would read is byte for byte what the client sent (also after
// http.ReadRequest, which canonicalises header names in its buffer, has
// parsed the head).
func handOver(t *testing.T, fr *front, m parkMetrics, tc *trackedConn, br *bufio.Reader, data []byte) {
	t.Helper()
	got := handOverBytes(fr, m, tc, br)
	if !bytes.Equal(got, data) {
		t.Fatalf("handed over %q, the client sent %q", got, data)
	}
}

// handOverBytes hands tc over to a parker that is shut down and returns
// the bytes net/http would read first.
func handOverBytes(fr *front, m parkMetrics, tc *trackedConn, br *bufio.Reader) []byte {
	p := newParker(1, time.Minute, m)
	p.Close()
	fr.handover(p, tc, br)
	return tc.pending
}
