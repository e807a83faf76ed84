//go:build unix

package sockio_test

import (
	"net"
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
