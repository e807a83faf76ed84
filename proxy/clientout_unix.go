//go:build unix

package proxy

import (
	"errors"
	"os"
	"syscall"

	"github.com/sekisho/sekisho/internal/sockio"
)

// clientRaw is clientOut's socket path on plain TCP.
type clientRaw struct {
	rc   syscall.RawConn
	fn   func(fd uintptr) bool // bound once per pooled frontState
	p    []byte
	n    int
	err  error
	step int // 0: write; 1: readable
}

func (r *clientRaw) reset(t *trackedConn) {
	if r.fn == nil {
		r.fn = r.do
	}
	r.rc = t.rawConn()
}

func (r *clientRaw) on() bool { return r.rc != nil }

// sendAndWait writes the held answer and waits, within the read deadline
// set by the caller, for the next request. It reports whether the wait
// ended on the deadline; any other end (a request, the client gone) the
// read that follows meets. A write the socket could not take whole is
// finished the usual way.
func (o *clientOut) sendAndWait() (timedOut bool, err error) {
	r := &o.raw
	r.p, r.n, r.err, r.step = o.pending, 0, nil, 0
	o.pending = nil
	rerr := r.rc.Read(r.fn)
	p, n, werr := r.p, r.n, r.err
	r.p = nil
	switch {
	case r.step == 0:
		return false, rerr // the connection was closed before the write
	case werr != nil:
		return false, werr
	case n < len(p):
		_, err = o.t.Conn.Write(p[n:])
		return false, err
	}
	return errors.Is(rerr, os.ErrDeadlineExceeded), nil
}

// readable reports whether the client has sent something (or closed):
// one look at the socket, without waiting.
func (o *clientOut) readable() bool {
	seen := false
	// Control, not Read: the read deadline has passed when this is asked.
	_ = o.raw.rc.Control(func(fd uintptr) { seen = !sockio.Idle(fd) })
	return seen
}

func (r *clientRaw) do(fd uintptr) bool {
	if r.step != 0 {
		return true
	}
	r.step = 1
	n, full, err := sockio.Write(fd, r.p)
	r.n, r.err = n, err
	return full || err != nil // else wait for the next request
}

// rawConn is the connection's socket for clientOut, made once: nil over
// TLS or for a connection without a socket of its own.
func (c *trackedConn) rawConn() syscall.RawConn {
	if !c.rawTried {
		c.rawTried = true
		if c.tls == nil {
			if r := sockio.NewReader(c.Conn); r != nil {
				c.rd, c.raw = r, r.RawConn()
			}
		}
	}
	return c.raw
}

// release drops the connection's socket when the state goes back to the
// pool (fn stays bound).
func (r *clientRaw) release() { r.rc, r.p = nil, nil }
