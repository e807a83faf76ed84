//go:build unix

package h1transport

import (
	"errors"
	"syscall"
)

// usable reports whether an idle connection may carry a request: the
// upstream has neither closed it nor sent anything since its last
// response (a late or extra response must not be read as the answer to
// the next request). A non-blocking peek at the socket: it does not wait
// and consumes nothing. Connections without a socket are assumed usable.
func usable(c *conn) bool {
	sc, ok := c.raw.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	var buf [1]byte
	live := true
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Only "would block" means live. No error: the upstream closed (0
		// bytes) or sent something. Any other error: the socket is broken.
		live = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && live
}
