//go:build unix

package h1transport

import (
	"errors"
	"syscall"
)

// peeker looks at an idle connection's socket without waiting and without
// consuming anything. Built once per connection so that the check
// allocates nothing per request.
type peeker struct {
	rc   syscall.RawConn
	fn   func(fd uintptr) bool
	live bool
	buf  [1]byte
}

func newPeeker(c *conn) {
	sc, ok := c.raw.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	p := &peeker{rc: rc}
	p.fn = func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Only "would block" means live. No error: the upstream closed (0
		// bytes) or sent something. Any other error: the socket is broken.
		p.live = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
		return true // never wait
	}
	c.peek = p
}

// usable reports whether an idle connection may carry a request: the
// upstream has neither closed it nor sent anything since its last
// response (a late or extra response must not be read as the answer to
// the next request). Connections without a socket are assumed usable.
func usable(c *conn) bool {
	p := c.peek
	if p == nil {
		return true
	}
	p.live = false
	return p.rc.Read(p.fn) == nil && p.live
}
