//go:build unix

package sockio_test

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/sockio"
	"github.com/sekisho/sekisho/internal/testnet"
)

func fdOf(t *testing.T, c net.Conn, f func(fd uintptr)) {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Control(f); err != nil {
		t.Fatal(err)
	}
}

func TestIdleAndWrite(t *testing.T) {
	c, s := testnet.TCPPair(t)
	fdOf(t, c, func(fd uintptr) {
		if !sockio.Idle(fd) {
			t.Error("not idle with nothing sent")
		}
	})
	s.Write([]byte("x"))
	time.Sleep(20 * time.Millisecond)
	fdOf(t, c, func(fd uintptr) {
		if sockio.Idle(fd) {
			t.Error("idle with a byte waiting")
		}
	})
	fdOf(t, c, func(fd uintptr) {
		if n, full, err := sockio.Write(fd, []byte("hello")); n != 5 || full || err != nil {
			t.Errorf("Write = %d, %v, %v", n, full, err)
		}
	})
	b := make([]byte, 5)
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.Read(b); err != nil || string(b) != "hello" {
		t.Fatalf("peer read %q, %v", b, err)
	}
	s.Close()
	time.Sleep(20 * time.Millisecond)
	fdOf(t, c, func(fd uintptr) {
		if sockio.Idle(fd) {
			t.Error("idle after the peer closed")
		}
	})
}

func TestReader(t *testing.T) {
	c, s := testnet.TCPPair(t)
	r := sockio.NewReader(c)
	if r == nil {
		t.Fatal("NewReader of a TCP connection is nil")
	}
	if n, err := r.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}
	// A read waits in the poller until the peer writes.
	go func() {
		time.Sleep(30 * time.Millisecond)
		s.Write([]byte("hello"))
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, err := r.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	// A short buffer takes what fits; the rest stays for the next read.
	s.Write([]byte("abcdef"))
	small := make([]byte, 4)
	if n, err := r.Read(small); err != nil || string(small[:n]) != "abcd" {
		t.Fatalf("short Read = %q, %v", small[:n], err)
	}
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "ef" {
		t.Fatalf("rest = %q, %v", buf[:n], err)
	}
	// The read deadline ends a wait as net.Conn.Read's does.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err = r.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v, want a timeout", err)
	}
	// net/http's server asks err.(net.Error) directly, not errors.As.
	if _, ok := err.(net.Error); !ok {
		t.Fatalf("Read past the deadline: %T is not a net.Error itself", err)
	}
	if _, want := c.Read(buf); err.Error() != want.Error() {
		t.Errorf("Read's error %q, net.Conn.Read's %q", err, want)
	}
	// The peer closing is io.EOF, unwrapped, as net.Conn.Read gives it.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	s.Close()
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read after the peer closed = %d, %v; want io.EOF", n, err)
	}
}

func TestReaderReset(t *testing.T) {
	c, s := testnet.TCPPair(t)
	r := sockio.NewReader(c)
	// Unread data on close makes the peer's kernel send RST.
	c.Write([]byte("unread"))
	time.Sleep(20 * time.Millisecond)
	s.(*net.TCPConn).SetLinger(0)
	s.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := r.Read(make([]byte, 8))
	var oe *net.OpError
	if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("Read after a reset = %v, want ECONNRESET in a *net.OpError of Op read", err)
	}
	// As net.Conn.Read's error says it (the kernel reports a reset
	// once, so it is written out here).
	if want := "read tcp " + c.LocalAddr().String() + "->" + c.RemoteAddr().String() + ": read: connection reset by peer"; err.Error() != want {
		t.Errorf("Read's error %q, want %q", err, want)
	}
}

func TestReaderClosed(t *testing.T) {
	c, _ := testnet.TCPPair(t)
	r := sockio.NewReader(c)
	go func() {
		time.Sleep(30 * time.Millisecond)
		c.Close()
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read of a connection closed meanwhile = %v, want net.ErrClosed", err)
	}
	_, err := r.Read(make([]byte, 8))
	_, want := c.Read(make([]byte, 8))
	var oe *net.OpError
	if !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) || oe.Op != "read" || err.Error() != want.Error() {
		t.Fatalf("Read of a closed connection = %v, want as net.Conn.Read: %v", err, want)
	}
}

func TestReaderNoSocket(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if r := sockio.NewReader(a); r != nil {
		t.Fatal("NewReader of a pipe is not nil")
	}
}

func TestReaderAllocs(t *testing.T) {
	c, s := testnet.TCPPair(t)
	r := sockio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(time.Minute))
	msg, buf := []byte("0123456789"), make([]byte, 64)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := s.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := 0
		for got < len(msg) {
			n, err := r.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per write and read, want 0", allocs)
	}
}
