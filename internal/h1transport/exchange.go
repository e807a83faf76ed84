package h1transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http/httpguts"
)

// Exchange is the round trip of the gateway's fast path (proxy/front.go):
// the request and response heads are fasthttp's, which it writes and parses
// without allocating, instead of net/http's Request and Response, which cost
// about a dozen allocations per header line on a gateway that forwards
// every request. The connections, the pool, the liveness peek, the header
// timeout, the cancellation and the retry are the same as RoundTrip's.
//
// req must be a GET or HEAD (or another method without a body) whose head is
// complete: request URI, Host and every header as the upstream should see
// them; Exchange sends it as fasthttp's Request.Write serialises it. The
// response head is read into resp by fasthttp's parser; interim 1xx
// responses are skipped, and a 101 (no upgrade was asked for) is an error.
// A response head larger than the connection's read buffer (headBuffer) is
// an error, as nginx answers 502 to an upstream head above its
// proxy_buffer_size (4 or 8 KiB by default).
//
// The body is read from the returned Stream, which decides what becomes of
// the connection: pooled after the body was read to its end (when neither
// side asked to close and the body was not delimited by the connection's
// close), closed after an error or an early Close.
func (t *Transport) Exchange(ctx context.Context, https bool, host string, req *fasthttp.RequestHeader, resp *fasthttp.Response) (*Stream, error) {
	return t.exchangeRetry(ctx, https, host, &outHead{hdr: req}, resp)
}

// ExchangeGet is Exchange for a GET whose head is given as the bytes to
// send: the request line ("GET target HTTP/1.1"), every header line and
// the empty line, each ending in CRLF. The caller vouches for the head:
// well formed, no CR or LF inside a line, no body, and no Connection
// header (the connection is kept when the response allows). It saves
// copying every header through fasthttp's header into the same bytes.
// The body is read through into when it is not nil (the caller's, pooled
// with resp: one allocation less per request), a new Stream otherwise;
// into must not be in use.
func (t *Transport) ExchangeGet(ctx context.Context, https bool, host string, head []byte, resp *fasthttp.Response, into *Stream) (*Stream, error) {
	return t.exchangeRetry(ctx, https, host, &outHead{raw: head, into: into}, resp)
}

// outHead is the request head of an exchange: fasthttp's header, or the
// bytes of a GET's head; into is where the body's Stream goes, if given.
type outHead struct {
	hdr  *fasthttp.RequestHeader
	raw  []byte
	into *Stream
}

func (o *outHead) write(bw *bufio.Writer) error {
	if o.hdr != nil {
		return o.hdr.Write(bw)
	}
	_, err := bw.Write(o.raw)
	return err
}

func (o *outHead) isHead() bool { return o.hdr != nil && o.hdr.IsHead() }

func (o *outHead) idempotent() bool { return o.hdr == nil || idempotent(string(o.hdr.Method())) }

func (o *outHead) asksClose() bool {
	return o.hdr != nil && (o.hdr.ConnectionClose() || asksClose(o.hdr.Peek("Connection")))
}

func (t *Transport) exchangeRetry(ctx context.Context, https bool, host string, req *outHead, resp *fasthttp.Response) (*Stream, error) {
	key := connKey{https: https, host: host}
	// A GET given as bytes checks a reused connection in the same call as
	// its write (sendRaw); anything else when it is taken from the pool.
	deferPeek := req.raw != nil
	for attempt := 0; ; attempt++ {
		c, reused, err := t.acquire(ctx, key, hostname(host), attempt, !deferPeek)
		if err != nil {
			return nil, err
		}
		s, retryable, err := t.exchange(ctx, c, req, resp, reused && deferPeek)
		if err == nil {
			return s, nil
		}
		if err == errDeadIdle {
			// Nothing was sent: take the next idle connection, as
			// takeIdle does when it checks them itself.
			attempt--
			continue
		}
		if reused && retryable && req.idempotent() && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

// asksClose reports whether a Connection header value has the token
// close (with special headers disabled, as the gateway sends them,
// fasthttp's ConnectionClose does not see it).
func asksClose(v []byte) bool {
	return len(v) > 0 && httpguts.HeaderValuesContainsToken([]string{string(v)}, "close")
}

// hostname is host without its port and IPv6 brackets.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		return host[1 : len(host)-1]
	}
	return host
}

// errDeadIdle: an idle connection's check, done by exchange, found it
// closed by the upstream or holding bytes nobody asked for; it was closed
// and nothing was sent on it.
var errDeadIdle = errors.New("h1transport: idle connection not usable")

// exchange sends req on c and reads the response head. peek says that c
// is an idle one whose check (usable) is still to be done.
func (t *Transport) exchange(ctx context.Context, c *conn, req *outHead, resp *fasthttp.Response, peek bool) (s *Stream, retryable bool, err error) {
	if req.raw != nil && c.rawio != nil {
		// Plain TCP: check, write and wait for the answer in one call on
		// the socket (sendRaw), with the header deadline and the cancel
		// callback already set.
		stop := t.begin(ctx, c)
		switch n, err := c.rawio.sendRaw(req.raw, peek); {
		case err == errDeadIdle:
			stop.stop()
			c.close()
			return nil, false, errDeadIdle
		case err != nil:
			c.werr = err
			return nil, true, t.abort(ctx, c, stop, err, false)
		case n < len(req.raw):
			// The socket's buffer was full: the rest the usual way.
			if _, err := c.Write(req.raw[n:]); err != nil {
				return nil, true, t.abort(ctx, c, stop, err, false)
			}
		}
		return t.readHead(ctx, c, req, resp, stop)
	}
	if peek && !usable(c) {
		c.close()
		return nil, false, errDeadIdle
	}
	stop := t.begin(ctx, c)
	if err := req.write(c.bw); err != nil {
		return nil, c.werr != nil, t.abort(ctx, c, stop, err, false)
	}
	if err := c.bw.Flush(); err != nil {
		return nil, true, t.abort(ctx, c, stop, err, false)
	}
	return t.readHead(ctx, c, req, resp, stop)
}

// readHead reads the response head of req, sent on c.
func (t *Transport) readHead(ctx context.Context, c *conn, req *outHead, resp *fasthttp.Response, stop stopper) (s *Stream, retryable bool, err error) {
	start := c.nread
	c.limit = t.maxHeader
	resp.StreamBody = true
	resp.SkipBody = req.isHead()
	if err := resp.Read(c.br); err != nil {
		return nil, retryableRead(c, start, err), t.abort(ctx, c, stop, err, true)
	}
	if resp.StatusCode() == fasthttp.StatusSwitchingProtocols {
		resp.CloseBodyStream()
		return nil, false, t.abort(ctx, c, stop, errUnexpected101, false)
	}
	cl := resp.Header.ContentLength()
	t.headRead(ctx, c, req.isHead() || cl == 0 || cl > 0 && c.br.Buffered() >= cl)
	if s = req.into; s == nil {
		s = new(Stream)
	}
	*s = Stream{t: t, c: c, ctx: ctx, stop: stop, resp: resp, r: resp.BodyStream()}
	// A body of length -2 runs until the upstream closes the connection;
	// fasthttp gives -2 to a 204 or 304 without Content-Length too, which
	// has no body (and so no stream).
	s.reuse = !req.asksClose() && !resp.ConnectionClose() &&
		(cl != -2 || s.r == nil)
	if s.r == nil {
		s.end(io.EOF)
	}
	return s, false, nil
}

// Stream is the body of a response read by [Transport.Exchange]. It is
// read by one goroutine; Close may follow any Read.
type Stream struct {
	t     *Transport
	c     *conn
	ctx   context.Context
	stop  stopper
	resp  *fasthttp.Response
	r     io.Reader // resp.BodyStream(); nil once ended
	reuse bool
	err   error // io.EOF or the error that ended the body; nil while open
}

// Read reads the body. At its end it returns io.EOF and the connection has
// gone back to the pool; after an error (the context's, when it ended the
// read) the connection is closed.
func (s *Stream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	if err != nil {
		if err != io.EOF {
			err = ctxError(s.ctx, err)
		}
		s.end(err)
	}
	return n, err
}

// Close ends the body: before its end, the connection is closed.
func (s *Stream) Close() error {
	if s.err == nil {
		s.end(errStreamClosed)
	}
	return nil
}

var errStreamClosed = errors.New("h1transport: body closed")

// end releases fasthttp's stream, which reads from the connection's
// buffer, before the connection goes back to the pool or is closed.
func (s *Stream) end(err error) {
	s.err = err
	s.r = nil
	s.resp.CloseBodyStream()
	s.t.finish(s.c, s.stop, s.reuse && err == io.EOF)
}
