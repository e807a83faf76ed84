package attack

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/apptest"
)

// TestOversizedHeaders: headers above server.max_header_bytes get 431, are
// never forwarded, and are audited under the X-Request-Id of the answer
// although net/http, not the gateway, refuses them.
func TestOversizedHeaders(t *testing.T) {
	w := apptest.Start(t, apptest.Options{Server: "max_header_bytes: 8192"})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	// net/http allows 4 KiB of slack above MaxHeaderBytes; go well past it.
	big := "X-Big: " + strings.Repeat("a", 32<<10)
	mustRefusalRecord(t, w, w.Raw(raw("GET", "/public", zaimu, cookie, big)), http.StatusRequestHeaderFieldsTooLarge, "header_too_large")
	many := make([]string, 2000)
	for i := range many {
		many[i] = "X-H: 0123456789"
	}
	mustRefusalRecord(t, w, w.Raw(raw("GET", "/public", zaimu, cookie, many...)), http.StatusRequestHeaderFieldsTooLarge, "header_too_large")
	if r := w.Raw(raw("GET", "/"+strings.Repeat("a", 32<<10), zaimu, cookie)); r.Status != http.StatusRequestHeaderFieldsTooLarge && r.Status != http.StatusRequestURITooLong {
		t.Errorf("32 KiB request line: %d, want 431 or 414", r.Status)
	} else {
		mustRecords(t, w, rid(t, r))
	}
	// Over TLS too, from a real client.
	req := getReq(w, zaimu, "/public", cookie)
	req.Header.Set("X-Big", strings.Repeat("a", 32<<10))
	mustRefusalRecord(t, w, do(t, client(t, w, zaimu, nil), req), http.StatusRequestHeaderFieldsTooLarge, "header_too_large")
	if len(w.Seen()) != 0 {
		t.Errorf("upstream saw %d oversized requests", len(w.Seen()))
	}
	// The gateway is still fine.
	if r := w.Raw(raw("GET", "/public", zaimu, cookie)); r.Status != 200 {
		t.Errorf("after: %d", r.Status)
	}
}

// TestSlowLoris: a client that never finishes its headers is cut off after
// server.read_header_timeout, on both listeners, and so is a TLS client
// that never finishes its handshake.
func TestSlowLoris(t *testing.T) {
	w := apptest.Start(t, apptest.Options{Server: "read_header_timeout: 1s"})
	trickle := func(t *testing.T, conn net.Conn) time.Duration {
		start := time.Now()
		io.WriteString(conn, "GET /public HTTP/1.1\r\nHost: "+zaimu+"\r\n")
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			conn.SetReadDeadline(time.Now().Add(8 * time.Second))
			io.Copy(io.Discard, conn)
		}()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-closed:
				return time.Since(start)
			case <-tick.C:
				// One more header byte, never the blank line.
				if _, err := io.WriteString(conn, "X"); err != nil {
					<-closed
					return time.Since(start)
				}
			}
		}
	}
	t.Run("plain", func(t *testing.T) {
		conn, err := net.Dial("tcp", w.HTTP)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if d := trickle(t, conn); d > 3*time.Second {
			t.Errorf("slow client held the connection for %v", d)
		}
	})
	t.Run("tls", func(t *testing.T) {
		conn, err := tls.Dial("tcp", w.HTTPS, &tls.Config{RootCAs: w.CAPool, ServerName: zaimu, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if d := trickle(t, conn); d > 3*time.Second {
			t.Errorf("slow client held the connection for %v", d)
		}
	})
	t.Run("tls handshake never started", func(t *testing.T) {
		conn, err := net.Dial("tcp", w.HTTPS)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		conn.SetReadDeadline(time.Now().Add(8 * time.Second))
		_, err = io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection without a ClientHello still open after %v", time.Since(start))
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("closed after %v", d)
		}
	})
	if len(w.Seen()) != 0 {
		t.Errorf("upstream saw %d requests", len(w.Seen()))
	}
}

// TestManyConnections: hundreds of idle and half-open connections do not
// stop a normal request from being served.
func TestManyConnections(t *testing.T) {
	w := apptest.Start(t, apptest.Options{Server: "read_header_timeout: 2s"})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 300; i++ {
		addr := w.HTTP
		if i%2 == 0 {
			addr = w.HTTPS
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if i%3 == 0 {
			io.WriteString(c, "GET /public HTTP/1.1\r\nHost: ")
		}
		conns = append(conns, c)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", w.HTTP, 5*time.Second)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, raw("GET", "/public", zaimu, cookie))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- resp.Status
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if r := w.Get(zaimu, "/public", cookie, nil); r.Status != 200 {
		t.Errorf("TLS request while 300 connections idle: %d", r.Status)
	}
}

// h2 frame types and flags used by TestHTTP2RapidReset.
const (
	h2Data, h2Headers, h2RST, h2Settings, h2GoAway = 0x0, 0x1, 0x3, 0x4, 0x7
	h2EndStream, h2EndHeaders                      = 0x1, 0x4
)

func h2Frame(typ, flags byte, stream uint32, payload []byte) []byte {
	b := make([]byte, 9, 9+len(payload))
	b[0], b[1], b[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	b[3], b[4] = typ, flags
	binary.BigEndian.PutUint32(b[5:], stream&0x7fffffff)
	return append(b, payload...)
}

// hpackLiteral is a literal header field without indexing whose name is
// static-table entry idx (< 15), value not Huffman-coded (< 127 bytes).
func hpackLiteral(idx byte, value string) []byte {
	return append([]byte{idx, byte(len(value))}, value...)
}

// TestHTTP2RapidReset (CVE-2023-44487): a client opens and immediately
// cancels thousands of streams on one connection. The server must survive
// (answer a normal request afterwards) and must not let the client keep
// more streams in flight than it allows; net/http's server answers with
// GOAWAY or closes the connection when the resets outrun its handlers.
func TestHTTP2RapidReset(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	conn, err := tls.Dial("tcp", w.HTTPS, &tls.Config{RootCAs: w.CAPool, ServerName: zaimu, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN negotiated %q, want h2", p)
	}
	var goaway bool
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		hdr := make([]byte, 9)
		for {
			if _, err := io.ReadFull(conn, hdr); err != nil {
				return
			}
			n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
			if _, err := io.CopyN(io.Discard, conn, int64(n)); err != nil {
				return
			}
			if hdr[3] == h2GoAway {
				goaway = true
			}
		}
	}()
	var block bytes.Buffer
	block.Write([]byte{0x82, 0x87})            // :method GET, :scheme https
	block.Write(hpackLiteral(0x04, "/public")) // :path
	block.Write(hpackLiteral(0x01, zaimu))     // :authority
	block.Write([]byte{0x0f, 0x11})            // cookie (static index 32 = 15 + 17), literal value:
	cookieVal := "__Host-sekisho=" + cookie
	if len(cookieVal) < 127 {
		block.WriteByte(byte(len(cookieVal)))
	} else {
		// HPACK integer with a 7-bit prefix.
		n := len(cookieVal) - 127
		block.WriteByte(127)
		for n >= 128 {
			block.WriteByte(byte(n%128 + 128))
			n /= 128
		}
		block.WriteByte(byte(n))
	}
	block.WriteString(cookieVal)

	out := bufio.NewWriterSize(conn, 64<<10)
	out.WriteString("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	out.Write(h2Frame(h2Settings, 0, 0, nil))
	const streams = 3000
	var writeErr error
	for i := 0; i < streams; i++ {
		id := uint32(2*i + 1)
		out.Write(h2Frame(h2Headers, h2EndHeaders|h2EndStream, id, block.Bytes()))
		out.Write(h2Frame(h2RST, 0, id, []byte{0, 0, 0, 0x8})) // CANCEL
		if out.Buffered() > 48<<10 {
			if writeErr = out.Flush(); writeErr != nil {
				break
			}
		}
	}
	if writeErr == nil {
		writeErr = out.Flush()
	}
	// Give the server time to work through (or refuse) the burst.
	time.Sleep(500 * time.Millisecond)
	conn.Close()
	<-readDone
	t.Logf("rapid reset: %d streams sent, write error %v, GOAWAY %v, upstream saw %d", streams, writeErr, goaway, len(w.Seen()))

	// The server is up and serves a normal request over HTTP/2.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: w.CAPool, ServerName: zaimu}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(getReq(w, zaimu, "/public", cookie))
	if err != nil {
		t.Fatalf("after rapid reset: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("after rapid reset: %s over %s", resp.Status, resp.Proto)
	}
	// The canceled streams did not all reach the upstream: the attack
	// cannot amplify into thousands of upstream requests.
	if n := len(w.Seen()); n >= streams {
		t.Errorf("upstream saw %d of %d canceled streams", n, streams)
	}
}

// TestSlowBody: headers complete, then the body stalls. A client must not
// be able to hold a gateway connection and an upstream connection for
// ever this way (nginx's client_body_timeout, 60 s by default).
func TestSlowBody(t *testing.T) {
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // an app that reads its form
		io.WriteString(w, "ok")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(ln)
	defer up.Close()
	routes := "  - {name: zaimu, host: " + zaimu + ", upstream: \"http://" + ln.Addr().String() + "\", segment: lgwan, class: \"2\"}\n"
	w := apptest.Start(t, apptest.Options{Routes: routes, Server: "read_header_timeout: 1s\nidle_timeout: 2s\nbody_read_timeout: 1s",
		Policy: "condition, 庁内, zone=chonai\nallow, *, class:2, read|write, 庁内\n"})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	conn, err := net.Dial("tcp", w.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /form HTTP/1.1\r\nHost: "+zaimu+"\r\nCookie: __Host-sekisho="+cookie+"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\na=1")
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(4 * time.Second))
	_, err = io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("GAP (fixed; regression): a request body that stalls holds the gateway connection (and an upstream connection) with no time limit: still open after %v; proxy/server.go sets no ReadTimeout or per-read body deadline, and the route timeout starts only after the body is sent (nginx: client_body_timeout)", time.Since(start).Round(time.Second))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stalled body held for %v", d)
	}
}
