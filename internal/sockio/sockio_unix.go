//go:build unix

package sockio

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// Idle reports whether nothing is waiting to be read on fd and the peer
// has not closed: a look without waiting and without consuming.
func Idle(fd uintptr) bool {
	var b [1]byte
	_, err := peek(fd, b[:])
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}

// Write writes p to the non-blocking fd until it is all written, the
// socket's buffer is full (full: the rest is the caller's to write the
// usual way), or a write fails.
func Write(fd uintptr, p []byte) (n int, full bool, err error) {
	for n < len(p) {
		m, errno := write(fd, p[n:])
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			return n, true, nil
		case errno != 0:
			return n, false, errno
		}
		n += m
	}
	return n, false, nil
}

// Reader reads a connection's socket inside its RawConn.Read: it waits
// in Go's poller, honours the read deadline and Close as net.Conn.Read
// does, and reads with the system call of this file's platform (see the
// package comment). It returns errors of the same types net.Conn.Read
// returns, since callers (net/http's server among them) look at the
// type: io.EOF, unwrapped, when the peer has closed; otherwise a
// *net.OpError with Op "read" around os.ErrDeadlineExceeded, net.ErrClosed
// or an *os.SyscallError (errors.Is(err, syscall.ECONNRESET) holds).
//
// A Reader is one connection's and is not safe for concurrent Reads,
// which net.Conn's callers do not make either.
type Reader struct {
	c   net.Conn // for the addresses of an error
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // bound once: a Read allocates nothing
	p   []byte
	n   int
	err error
}

// RawConnOf returns c's socket, or nil when c has none (a TLS
// connection, a pipe, anything not a syscall.Conn).
func RawConnOf(c any) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// NewReader returns a Reader of c's socket, or nil when c has none.
func NewReader(c net.Conn) *Reader {
	rc := RawConnOf(c)
	if rc == nil {
		return nil
	}
	r := &Reader{c: c, rc: rc}
	r.fn = r.do
	return r
}

// RawConn is the socket r reads.
func (r *Reader) RawConn() syscall.RawConn { return r.rc }

// Read reads into p as net.Conn.Read does.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.err = p, 0, nil
	rerr := r.rc.Read(r.fn)
	n, err := r.n, r.err
	r.p, r.err = nil, nil
	if rerr != nil {
		err = cause(rerr)
	}
	if err != nil && err != io.EOF {
		return n, &net.OpError{Op: "read", Net: r.c.LocalAddr().Network(), Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: err}
	}
	return n, err
}

func (r *Reader) do(fd uintptr) bool {
	for {
		n, errno := read(fd, r.p)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			return false // wait in the poller
		case errno != 0:
			r.err = os.NewSyscallError("read", errno)
		case n == 0:
			r.err = io.EOF
		default:
			r.n = n
		}
		return true
	}
}

// cause is what a RawConn's error reports: its own errors say
// "raw-read", where net.Conn's say "read".
func cause(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Err
	}
	return err
}
