//go:build unix

package h1transport

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/testnet"
)

// TestSendRaw: the socket path writes the head, parks until the answer is
// readable (so that the next read finds it), refuses a connection the
// peer closed or wrote to while idle without writing anything, leaves
// the rest of a head the socket could not take to the caller, and ends
// its wait on the read deadline without reporting it.
func TestSendRaw(t *testing.T) {
	head := []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	t.Run("write, then wait for the answer", func(t *testing.T) {
		c, s := testnet.TCPPair(t)
		r := newRawIO(c)
		if r == nil {
			t.Fatal("no raw path for a TCP connection")
		}
		got := make(chan []byte, 1)
		go func() {
			b := make([]byte, len(head))
			io.ReadFull(s, b)
			got <- b
			time.Sleep(50 * time.Millisecond) // the client must wait for this
			s.Write([]byte("answer"))
		}()
		start := time.Now()
		n, err := r.sendRaw(head, true)
		if err != nil || n != len(head) {
			t.Fatalf("sendRaw = %d, %v", n, err)
		}
		if d := time.Since(start); d < 40*time.Millisecond {
			t.Errorf("returned after %v, before the answer was sent", d)
		}
		if b := <-got; !bytes.Equal(b, head) {
			t.Fatalf("peer read %q", b)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 16)
		if n, err := c.Read(b); err != nil || string(b[:n]) != "answer" {
			t.Fatalf("read %q, %v", b[:n], err)
		}
	})
	t.Run("peer wrote while idle", func(t *testing.T) {
		c, s := testnet.TCPPair(t)
		r := newRawIO(c)
		s.Write([]byte("stale"))
		waitReadable(t, c)
		if _, err := r.sendRaw(head, true); err != errDeadIdle {
			t.Fatalf("sendRaw: %v, want errDeadIdle", err)
		}
		s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _ := s.Read(make([]byte, 64)); n != 0 {
			t.Errorf("the head was written (%d bytes) on a connection found unusable", n)
		}
	})
	t.Run("peer closed while idle", func(t *testing.T) {
		c, s := testnet.TCPPair(t)
		r := newRawIO(c)
		s.Close()
		waitReadable(t, c)
		if _, err := r.sendRaw(head, true); err != errDeadIdle {
			t.Fatalf("sendRaw: %v, want errDeadIdle", err)
		}
	})
	t.Run("no check on a new connection", func(t *testing.T) {
		c, s := testnet.TCPPair(t)
		r := newRawIO(c)
		s.Write([]byte("early"))
		waitReadable(t, c)
		// The early bytes may or may not end the wait (the poller's edge
		// for them can come before or after the wait's reset); the
		// deadline ends it either way. What matters: no check, the head
		// is written.
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := r.sendRaw(head, false); err != nil || n != len(head) {
			t.Fatalf("sendRaw = %d, %v", n, err)
		}
		got := make([]byte, len(head))
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, head) {
			t.Fatalf("peer read %q, %v; want the head", got, err)
		}
	})
	t.Run("deadline while waiting", func(t *testing.T) {
		c, _ := testnet.TCPPair(t)
		r := newRawIO(c)
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := r.sendRaw(head, true)
		if err != nil || n != len(head) {
			t.Fatalf("sendRaw = %d, %v: the wait's end is the read's to report", n, err)
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read after the wait: %v, want the deadline", err)
		}
	})
	t.Run("socket buffer full", func(t *testing.T) {
		c, s := testnet.TCPPair(t)
		sc, _ := c.(*net.TCPConn).SyscallConn()
		sc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096) })
		r := newRawIO(c)
		big := []byte("GET / HTTP/1.1\r\nX: " + strings.Repeat("x", 1<<20) + "\r\n\r\n")
		n, err := r.sendRaw(big, true) // the peer reads nothing yet
		if err != nil || n <= 0 || n >= len(big) {
			t.Fatalf("sendRaw = %d of %d, %v: want part of the head, the rest left to the caller", n, len(big), err)
		}
		done := make(chan int64, 1)
		go func() {
			m, _ := io.CopyN(io.Discard, s, int64(len(big)))
			done <- m
		}()
		if _, err := c.Write(big[n:]); err != nil {
			t.Fatal(err)
		}
		if m := <-done; m != int64(len(big)) {
			t.Fatalf("peer read %d of %d bytes", m, len(big))
		}
	})
	t.Run("closed connection", func(t *testing.T) {
		c, _ := testnet.TCPPair(t)
		r := newRawIO(c)
		c.Close()
		if _, err := r.sendRaw(head, true); err == nil {
			t.Fatal("no error on a closed connection")
		}
	})
}

// waitReadable waits until c has something to read or reached its end.
func waitReadable(t *testing.T, c net.Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cc := &conn{raw: c, nc: c}
		newPeeker(cc)
		if !usable(cc) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing arrived")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestExchangeGetTakesSocketPath: a plain upstream connection has the
// socket path, and ExchangeGet's exchanges go through it.
func TestExchangeGetTakesSocketPath(t *testing.T) {
	s := newServer(t, echoPath)
	tr, _ := newTransport(t, Options{})
	for range 3 {
		if _, body := exDoMode(t, tr, exHost(s.Server), exReq("GET", "/p", "h"), true); body != "/p" {
			t.Fatalf("body %q", body)
		}
	}
	tr.mu.Lock()
	var c *conn
	for _, l := range tr.idle {
		for _, x := range l.conns {
			c = x
		}
	}
	tr.mu.Unlock()
	if c == nil || c.rawio == nil {
		t.Fatal("no pooled connection with the socket path")
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("server saw %d connections, want 1 (reused)", n)
	}
}
