//go:build unix

package sockio

import (
	"net"
	"syscall"
)

// Conn is a TCP connection whose Read and Write make their system calls
// as this package does (see the package comment), for a caller that
// needs a net.Conn: crypto/tls over a client's or an upstream's socket.
// Everything else (deadlines, Close, addresses, SyscallConn) is the
// *net.TCPConn's own.
type Conn struct {
	*net.TCPConn
	r Reader
	w writer
}

// NewConn returns c as a Conn, or c itself when it is not a TCP
// connection with a socket.
func NewConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	// One allocation for the connection, its Reader and its writer: a
	// server holds one per client, idle ones included.
	sc := &Conn{TCPConn: tc}
	sc.r.init(tc, rc)
	sc.w.c, sc.w.rc = tc, rc
	sc.w.fn = sc.w.do
	return sc
}

// Read reads as Reader.Read does.
func (c *Conn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write writes all of p as net.Conn.Write does: waiting in the poller
// while the socket's buffer is full, within the write deadline.
func (c *Conn) Write(p []byte) (int, error) { return c.w.write(p) }

// writer is Conn's write side: like Reader, one connection's, its
// callback bound once. Writes are not made concurrently (net.Conn's
// callers, crypto/tls among them, serialise them).
type writer struct {
	c   net.Conn
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

func (w *writer) write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	w.p, w.n, w.err = p, 0, nil
	rerr := w.rc.Write(w.fn)
	n, err := w.n, w.err
	w.p, w.err = nil, nil
	if rerr != nil && err == nil {
		err = cause(rerr)
	}
	if err != nil {
		return n, opError("write", w.c, err)
	}
	return n, nil
}

// do writes what is left of p; false (wait until writable) while the
// socket's buffer is full.
func (w *writer) do(fd uintptr) bool {
	for w.n < len(w.p) {
		m, errno := write(fd, w.p[w.n:])
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			return false
		case errno != 0:
			w.err = wrapErrno("write", errno)
			return true
		}
		w.n += m
	}
	return true
}
