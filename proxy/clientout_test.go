//go:build unix

package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/testnet"
)

// TestClientOut: the final flush of an answer is held only on a plain
// socket, and sendAndWait writes it and returns once the next request
// has arrived (or the deadline passed), so that the read that follows
// finds the request; a write the socket cannot take whole is finished
// the usual way.
func TestClientOut(t *testing.T) {
	t.Run("held, written, then the wait", func(t *testing.T) {
		client, srv := testnet.TCPPair(t)
		tc := &trackedConn{Conn: srv}
		var o clientOut
		o.reset(tc)
		if !o.raw.on() {
			t.Fatal("no socket path on a plain TCP connection")
		}
		bw := bufio.NewWriterSize(&o, 64)
		bw.WriteString("HTTP/1.1 200 OK\r\n\r\n")
		o.hold = true
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		o.hold = false
		if string(o.pending) != "HTTP/1.1 200 OK\r\n\r\n" {
			t.Fatalf("pending %q", o.pending)
		}
		go func() {
			b := make([]byte, 19)
			io.ReadFull(client, b)
			time.Sleep(50 * time.Millisecond)
			client.Write([]byte("GET /next"))
		}()
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		if timedOut, err := o.sendAndWait(); err != nil || timedOut {
			t.Fatal(timedOut, err)
		}
		if d := time.Since(start); d < 40*time.Millisecond {
			t.Errorf("returned after %v, before the next request", d)
		}
		b := make([]byte, 16)
		if n, err := tc.Read(b); err != nil || string(b[:n]) != "GET /next" {
			t.Fatalf("read %q, %v", b[:n], err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		client, srv := testnet.TCPPair(t)
		var o clientOut
		o.reset(&trackedConn{Conn: srv})
		o.pending = []byte("answer")
		srv.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		if timedOut, err := o.sendAndWait(); err != nil || !timedOut {
			t.Fatalf("sendAndWait: %v, %v; want the deadline reported", timedOut, err)
		}
		if o.readable() {
			t.Error("readable with nothing sent")
		}
		client.Write([]byte("x"))
		time.Sleep(20 * time.Millisecond)
		if !o.readable() {
			t.Error("not readable with a byte sent")
		}
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 6)
		if _, err := io.ReadFull(client, b); err != nil || string(b) != "answer" {
			t.Fatalf("client read %q, %v", b, err)
		}
	})
	t.Run("socket buffer full", func(t *testing.T) {
		client, srv := testnet.TCPPair(t)
		sc, _ := srv.(*net.TCPConn).SyscallConn()
		sc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096) })
		var o clientOut
		o.reset(&trackedConn{Conn: srv})
		big := strings.Repeat("x", 1<<20)
		o.pending = []byte(big)
		done := make(chan int64, 1)
		go func() {
			time.Sleep(50 * time.Millisecond) // the socket fills first
			n, _ := io.CopyN(io.Discard, client, int64(len(big)))
			done <- n
		}()
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := o.sendAndWait(); err != nil {
			t.Fatal(err)
		}
		if n := <-done; n != int64(len(big)) {
			t.Fatalf("client read %d of %d bytes", n, len(big))
		}
	})
	t.Run("no socket path", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		var o clientOut
		o.reset(&trackedConn{Conn: a})
		if o.raw.on() {
			t.Fatal("socket path on a connection without a socket")
		}
		got := make(chan string, 1)
		go func() {
			buf := make([]byte, 5)
			io.ReadFull(b, buf)
			got <- string(buf)
		}()
		o.hold = true
		if _, err := o.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if o.pending != nil || <-got != "hello" {
			t.Fatal("the answer was held without a socket path to write it")
		}
	})
	t.Run("over TLS", func(t *testing.T) {
		_, srv := testnet.TCPPair(t)
		var o clientOut
		o.reset(&trackedConn{Conn: srv, tls: &tls.ConnectionState{}})
		if o.raw.on() {
			t.Fatal("socket path under TLS")
		}
	})
}

// TestFrontPipelinerNotStalled: a client that sends its next request while
// the previous one is still being served (in a segment of its own, after
// the gateway read the first) is not made to wait: such a request is only
// seen when the short wait ends (rawWait), and then the connection is
// marked and its answers go the usual way. Without the mark every round
// would wait rawWait; at most the first may (the bound on slow rounds
// leaves room for a loaded machine).
func TestFrontPipelinerNotStalled(t *testing.T) {
	f := newListenFixture(t, "  fast_path: true")
	c := f.dialRaw(t, false, nil)
	defer c.conn.Close()
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n" }
	const rounds = 6
	slow := 0
	for i := range rounds {
		// /hold waits for the gate: the next request is sent meanwhile.
		if _, err := io.WriteString(c.conn, get("/hold")); err != nil {
			t.Fatal(err)
		}
		<-f.gate.arrived
		if _, err := io.WriteString(c.conn, get(fmt.Sprintf("/next/%d", i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the next request is in the socket
		f.gate.release <- struct{}{}
		start := time.Now()
		for _, want := range []string{"held", fmt.Sprintf("upstream path=/next/%d", i)} {
			c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != want {
				t.Fatalf("round %d: body %q, want %q", i, b, want)
			}
		}
		if time.Since(start) >= rawWait {
			slow++
		}
	}
	if slow > rounds/2 {
		t.Errorf("%d of %d rounds waited rawWait or more for a request already sent: the connection was not marked", slow, rounds)
	}
}

// TestWaitDeadline: the wait after an answer keeps the deadline an earlier
// wait set while it still ends between 3/4 and 1 rawWait away, and sets a
// new one otherwise, or whenever any other deadline was set since (the
// connection would otherwise wait without one).
func TestWaitDeadline(t *testing.T) {
	_, srv := testnet.TCPPair(t)
	tc := &trackedConn{Conn: srv}
	now := time.Now()
	tc.waitDeadline(now)
	first := tc.rawDL.Load()
	if want := now.Add(rawWait).UnixNano(); first != want {
		t.Fatalf("rawDL %d, want %d", first, want)
	}
	tc.waitDeadline(now.Add(rawWait / 8))
	if got := tc.rawDL.Load(); got != first {
		t.Errorf("a wait 1/8 rawWait later set a new deadline")
	}
	later := now.Add(rawWait / 2)
	tc.waitDeadline(later)
	if got, want := tc.rawDL.Load(), later.Add(rawWait).UnixNano(); got != want {
		t.Errorf("a wait 1/2 rawWait later kept the old deadline: %d, want %d", got, want)
	}
	// Any other deadline (here: none at all) makes the next wait set its own.
	if err := tc.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if tc.rawDL.Load() != 0 {
		t.Fatal("SetReadDeadline left rawDL")
	}
	start := time.Now()
	tc.waitDeadline(start)
	done := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := tc.Read(b[:])
		done <- err
	}()
	select {
	case err := <-done:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read ended with %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		_ = srv.Close()
		t.Fatal("the wait had no deadline")
	}
	if err := tc.SetDeadline(time.Time{}); err != nil || tc.rawDL.Load() != 0 {
		t.Fatalf("SetDeadline: %v, rawDL %d", err, tc.rawDL.Load())
	}
}
