//go:build unix

package h1transport

import (
	"io"
	"net"
	"syscall"

	"github.com/sekisho/sekisho/internal/sockio"
)

// peeker looks at an idle connection's socket without waiting and without
// consuming anything. Built once per connection so that the check
// allocates nothing per request.
type peeker struct {
	rc   syscall.RawConn
	fn   func(fd uintptr) bool
	live bool
}

func newPeeker(c *conn) {
	rc := sockio.RawConnOf(c.raw)
	if rc == nil {
		return
	}
	p := &peeker{rc: rc}
	p.fn = func(fd uintptr) bool {
		// Only "would block" means live: the upstream has neither closed
		// (0 bytes) nor sent something, and the socket is not broken.
		p.live = sockio.Idle(fd)
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

// newReader returns the reader of a plain TCP connection's socket
// (sockio.Reader: see that package for why), or nil.
func newReader(raw net.Conn) io.Reader {
	if r := sockio.NewReader(raw); r != nil {
		return r
	}
	return nil
}

// rawIO writes a GET's head straight to the socket and waits for the
// answer in one RawConn.Read: the poller's readiness is reset first
// (RawRead's prepareRead), then the head is written, then the goroutine
// parks until the answer arrives. Going through net.Conn, the first read
// after the write always finds nothing yet (a read system call that
// returns EAGAIN before the goroutine parks); here the next read finds the
// answer. A reused connection's check (usable's peek) is done in the same
// call, before the write. Built once per connection: nothing is allocated
// per request.
type rawIO struct {
	rc   syscall.RawConn
	fn   func(fd uintptr) bool
	head []byte
	peek bool
	step int   // 0: check and write; 1: the answer is readable
	n    int   // bytes of head written
	err  error // the write's error, or errDeadIdle
}

func newRawIO(raw interface{}) *rawIO {
	rc := sockio.RawConnOf(raw)
	if rc == nil {
		return nil
	}
	r := &rawIO{rc: rc}
	r.fn = r.do
	return r
}

// sendRaw checks the connection (when peek is set), writes head and waits
// until the answer is readable or the read deadline passes. It returns the
// bytes written (fewer than len(head) when the socket's buffer filled: the
// caller writes the rest), the write's error, or errDeadIdle. A wait that
// ends on the deadline or a closed connection is not reported: the read
// that follows meets the same end and reports it as a read error. Bytes
// that arrived before the wait began without a check (peek false: a new
// connection) may not end it, since the reset can drop their readiness:
// an upstream that speaks first and then never answers is ended by the
// header deadline.
func (r *rawIO) sendRaw(head []byte, peek bool) (int, error) {
	r.head, r.peek, r.step, r.n, r.err = head, peek, 0, 0, nil
	rerr := r.rc.Read(r.fn)
	n, err := r.n, r.err
	r.head = nil
	if r.step == 0 {
		// RawRead failed before calling fn (a closed connection).
		return 0, rerr
	}
	return n, err
}

func (r *rawIO) do(fd uintptr) bool {
	if r.step != 0 {
		return true // readable
	}
	r.step = 1
	if r.peek && !sockio.Idle(fd) {
		r.err = errDeadIdle
		return true
	}
	n, full, err := sockio.Write(fd, r.head)
	r.n, r.err = n, err
	return full || err != nil // else wait for the answer
}
