package proxy

import "time"

// clientOut is what the fast path's response buffer writes to: the client
// connection, except that the final flush of an answer is held (hold, set
// by frontWriter.finish) for serve, which writes it when it waits for the
// connection's next request. On plain TCP the write and the wait are one
// RawConn.Read (sendAndWait, clientout_unix.go): the poller's readiness is
// reset before the write, so the goroutine parks until the next request
// has arrived, and the read that follows finds it. Through net.Conn the
// first read after an answer finds nothing yet: a system call per request
// that returns EAGAIN before the goroutine parks.
//
// The poller's readiness is reset when the wait begins, so a request that
// arrived before it (a client that pipelines: sends its next request
// before it has the answer) is only noticed when the wait ends. That wait
// is therefore short (rawWait); when it ends with a request already there,
// the connection is marked (trackedConn.noRawWait) and its answers go the
// usual way from then on.
//
// A held answer never outlives the request's turn of serve's loop: it is
// written before the connection is closed, before the next request is
// read, and before anything else is written to the buffer whose bytes it
// is (bufio.Writer's, untouched after its Flush until the next write).
type clientOut struct {
	t       *trackedConn
	raw     clientRaw // the socket path; zero (off) on TLS and elsewhere
	hold    bool
	pending []byte
}

// reset readies o for t (a connection's turn in serve).
func (o *clientOut) reset(t *trackedConn) {
	o.t, o.hold, o.pending = t, false, nil
	o.raw.reset(t)
}

// rawWait bounds the wait of sendAndWait (see above); a client slower
// than this to send its next request is then waited for the usual way.
const rawWait = 50 * time.Millisecond

// waitDeadline sets the read deadline for sendAndWait's wait: rawWait
// from now, or the one in place when serve set it for an earlier wait and
// it ends between three quarters of rawWait and rawWait from now. A busy
// connection's requests follow each other within milliseconds, so most
// waits keep the deadline of an earlier one.
func (c *trackedConn) waitDeadline(now time.Time) {
	n := now.UnixNano()
	if dl := c.rawDL.Load(); dl != 0 && dl >= n+int64(rawWait)*3/4 && dl <= n+int64(rawWait) {
		return
	}
	dl := now.Add(rawWait)
	_ = c.Conn.SetReadDeadline(dl)
	c.rawDL.Store(dl.UnixNano())
}

func (o *clientOut) Write(p []byte) (int, error) {
	if o.hold && o.pending == nil && o.raw.on() && !o.t.noRawWait {
		o.pending = p
		return len(p), nil
	}
	if err := o.flushPending(); err != nil {
		return 0, err
	}
	return o.t.Conn.Write(p)
}

// flushPending writes a held answer the usual way.
func (o *clientOut) flushPending() error {
	p := o.pending
	o.pending = nil
	if len(p) == 0 {
		return nil
	}
	_, err := o.t.Conn.Write(p)
	return err
}
