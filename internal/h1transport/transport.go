package h1transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Options configures a [Transport]. Each field says what its zero value
// means.
type Options struct {
	// DialContext opens the TCP connection to an upstream. If nil, a
	// net.Dialer with a 10 s timeout and 30 s keep-alive is used.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// TLSClientConfig is used for https upstreams. It is cloned; the
	// clone's NextProtos is forced to ["http/1.1"] and, when ServerName is
	// empty, ServerName is set to the URL's host name. If nil, a zero
	// tls.Config (system roots) is used.
	TLSClientConfig *tls.Config

	// TLSHandshakeTimeout bounds the TLS handshake (also bounded by the
	// request's context). If zero, 10 s; negative means no bound.
	TLSHandshakeTimeout time.Duration

	// MaxIdleConnsPerHost is how many idle connections are kept per
	// scheme and host. If zero, 256; negative keeps none.
	MaxIdleConnsPerHost int

	// IdleConnTimeout is how long a connection may stay idle in the pool
	// before it is closed. If zero, 90 s.
	IdleConnTimeout time.Duration

	// ResponseHeaderTimeout, if positive, bounds the wait for the
	// response headers after the request was written. Zero means no bound.
	ResponseHeaderTimeout time.Duration

	// MaxResponseHeaderBytes bounds the bytes read while looking for the
	// response headers (1xx responses included). If zero, 10 MiB, as in
	// net/http.
	MaxResponseHeaderBytes int64

	// Fallback receives every request the fast path does not take (see the
	// package documentation). Required: New panics if it is nil.
	Fallback http.RoundTripper
}

// Transport is an HTTP/1.1 round tripper that serves body-less requests on
// the calling goroutine and hands everything else to a fallback. It is
// safe for concurrent use.
type Transport struct {
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	tlsConfig     *tls.Config // cloned, NextProtos forced
	tlsTimeout    time.Duration
	maxIdle       int
	idleTimeout   time.Duration
	headerTimeout time.Duration
	maxHeader     int64
	fallback      http.RoundTripper

	mu          sync.Mutex
	idle        map[connKey]*idleList
	reaper      *time.Timer
	reaperArmed bool
}

var _ http.RoundTripper = (*Transport)(nil)

// New returns a Transport configured by opts. It panics if opts.Fallback
// is nil.
func New(opts Options) *Transport {
	if opts.Fallback == nil {
		panic("h1transport: Options.Fallback is required")
	}
	t := &Transport{
		dial:          opts.DialContext,
		tlsTimeout:    opts.TLSHandshakeTimeout,
		maxIdle:       opts.MaxIdleConnsPerHost,
		idleTimeout:   opts.IdleConnTimeout,
		headerTimeout: opts.ResponseHeaderTimeout,
		maxHeader:     opts.MaxResponseHeaderBytes,
		fallback:      opts.Fallback,
		idle:          make(map[connKey]*idleList),
	}
	if t.dial == nil {
		t.dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	if opts.TLSClientConfig != nil {
		t.tlsConfig = opts.TLSClientConfig.Clone()
	} else {
		t.tlsConfig = &tls.Config{}
	}
	t.tlsConfig.NextProtos = []string{"http/1.1"}
	if t.tlsTimeout == 0 {
		t.tlsTimeout = 10 * time.Second
	}
	if t.maxIdle == 0 {
		t.maxIdle = 256
	}
	if t.idleTimeout <= 0 {
		t.idleTimeout = 90 * time.Second
	}
	if t.maxHeader <= 0 {
		t.maxHeader = 10 << 20
	}
	return t
}

// CloseIdleConnections closes the pooled idle connections, and the
// fallback's if it has such a method. Connections in use are not
// interrupted.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	var all []*conn
	for k, l := range t.idle {
		all = append(all, l.conns...)
		delete(t.idle, k)
	}
	if t.reaper != nil {
		t.reaper.Stop()
	}
	t.reaperArmed = false
	t.mu.Unlock()
	for _, c := range all {
		c.close()
	}
	if ci, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !fastPath(req) {
		return t.fallback.RoundTrip(req)
	}
	key := connKey{https: req.URL.Scheme == "https", host: req.URL.Host}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		c, reused, err := t.acquire(ctx, key, req.URL.Hostname(), attempt, true)
		if err != nil {
			return nil, err
		}
		resp, retryable, err := t.roundTrip(ctx, c, req)
		if err == nil {
			return resp, nil
		}
		if reused && retryable && idempotent(req.Method) && ctx.Err() == nil {
			continue // the upstream closed an idle connection; mirrors net/http
		}
		return nil, err
	}
}

// acquire returns a connection for key: on the first attempt the pool's
// most recent live one if any (reused), otherwise a new one. peek says
// whether an idle one is checked here (takeIdle) or by the caller.
func (t *Transport) acquire(ctx context.Context, key connKey, hostname string, attempt int, peek bool) (c *conn, reused bool, err error) {
	if attempt == 0 {
		if c = t.takeIdle(key, peek); c != nil {
			return c, true, nil
		}
	}
	if c, err = t.dialConn(ctx, key, hostname); err != nil {
		return nil, false, ctxError(ctx, err)
	}
	return c, false, nil
}

// begin starts a round trip on c: the header deadline, then the
// context's cancel callback, registered after the deadline so that it
// cannot be overwritten by it, and before the write so that a stuck write
// is interrupted too.
//
// The header deadline is headerTimeout from now, or the one an earlier
// round trip on c left set (headRead) when that ends between 7/8 of
// headerTimeout and headerTimeout from now: a timer update saved on most
// requests of a busy connection, for a limit that may end up to an eighth
// early. The time is the one takeIdle read, when it took c.
func (t *Transport) begin(ctx context.Context, c *conn) (stop stopper) {
	if t.headerTimeout > 0 {
		now := c.takenAt
		if now.IsZero() {
			now = time.Now()
		}
		if end := now.Add(t.headerTimeout); c.rdl.IsZero() || c.rdl.After(end) || c.rdl.Before(end.Add(-t.headerTimeout/8)) {
			c.rdl = end
			c.nc.SetReadDeadline(c.rdl)
		}
	}
	c.takenAt = time.Time{}
	if h, ok := ctx.(Hooker); ok && h.Hook(c.onCancel) {
		stop.h = h
	} else if ctx.Done() != nil {
		stop.f = context.AfterFunc(ctx, c.onCancel)
	}
	c.werr = nil
	return stop
}

// Hooker is a context that runs one function when it ends without
// context.AfterFunc's allocations (an AfterFunc context, a stop closure and
// an entry in the parent's children, per call): the gateway's fast path
// gives one to every request. A round trip registers its cancel callback
// through it when the context offers one, and through context.AfterFunc
// otherwise.
type Hooker interface {
	context.Context
	// Hook arranges for f to run once when the context ends, in the
	// goroutine that ends it (at once, in the caller's, when it has
	// ended). It reports false, doing nothing, when a hook is already set.
	Hook(f func()) bool
	// Unhook removes the hook. Like the stop function of
	// context.AfterFunc, it reports whether it stopped the hook from
	// running: false when it has run or is running.
	Unhook() bool
}

// stopper undoes begin's registration: a Hooker's hook, or an AfterFunc.
type stopper struct {
	h Hooker
	f func() bool
}

// stop reports whether the cancel callback was stopped before it ran
// (true when none was registered).
func (s stopper) stop() bool {
	switch {
	case s.h != nil:
		return s.h.Unhook()
	case s.f != nil:
		return s.f()
	}
	return true
}

// headRead ends the wait for a response head: no size limit and no
// deadline from here on. The cancel callback may have run before the
// deadline was undone; its context error is set before it runs, so it
// is applied again. buffered says that the whole response is already in
// c.br: nothing more is read from the connection for it, so the
// deadline is left (a timer update saved per request); takeIdle undoes
// it if it has passed before the connection's next use, and the next
// begin sets its own.
func (t *Transport) headRead(ctx context.Context, c *conn, buffered bool) {
	c.limit = -1
	if t.headerTimeout > 0 && !buffered {
		c.nc.SetReadDeadline(time.Time{})
		c.rdl = time.Time{}
		if ctx.Err() != nil {
			c.onCancel()
		}
	}
}

// retryableRead reports whether a failed head read may be retried on a
// new connection: nothing of a response arrived (since start) and the
// connection failed.
func retryableRead(c *conn, start int64, err error) bool {
	return c.nread == start && (errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET))
}

// roundTrip sends req on c and reads the response headers. On error c is
// closed; retryable reports that nothing of a response was received and
// the connection failed (write error, EOF or reset on the first read).
func (t *Transport) roundTrip(ctx context.Context, c *conn, req *http.Request) (resp *http.Response, retryable bool, err error) {
	stop := t.begin(ctx, c)
	if err := req.Write(c.bw); err != nil {
		return nil, c.werr != nil, t.abort(ctx, c, stop, err, false)
	}
	if err := c.bw.Flush(); err != nil {
		return nil, true, t.abort(ctx, c, stop, err, false)
	}

	start := c.nread
	c.limit = t.maxHeader
	for n := 0; ; n++ {
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			return nil, retryableRead(c, start, err), t.abort(ctx, c, stop, err, true)
		}
		code := resp.StatusCode
		if code < 100 || code > 199 {
			break
		}
		if code == http.StatusSwitchingProtocols {
			return nil, false, t.abort(ctx, c, stop, errUnexpected101, false)
		}
		if n >= max1xx {
			return nil, false, t.abort(ctx, c, stop, errTooMany1xx, false)
		}
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, false, t.abort(ctx, c, stop, err, false)
			}
		}
	}
	t.headRead(ctx, c, false)
	resp.TLS = c.tlsState
	reuse := !req.Close && !resp.Close
	if resp.Body == http.NoBody {
		t.finish(c, stop, reuse)
		return resp, false, nil
	}
	resp.Body = &body{rc: resp.Body, t: t, c: c, ctx: ctx, stop: stop, reuse: reuse}
	return resp, false, nil
}

// abort ends a failed round trip on c: the cancel callback is stopped, c
// is closed, and the error says why when the context or the header
// timeout ended it.
func (t *Transport) abort(ctx context.Context, c *conn, stop stopper, err error, reading bool) error {
	stop.stop()
	c.close()
	if ctx.Err() != nil {
		return ctxError(ctx, err)
	}
	var ne net.Error
	// fasthttp's parser reports a read deadline as its own ErrTimeout.
	if reading && t.headerTimeout > 0 && (errors.As(err, &ne) && ne.Timeout() || errors.Is(err, fasthttp.ErrTimeout)) {
		return errHeaderTimeout
	}
	return err
}

// finish ends the use of c for one response: back to the pool if reuse
// holds, the cancel callback had not fired and nothing beyond the
// response was received; closed otherwise.
func (t *Transport) finish(c *conn, stop stopper, reuse bool) {
	if !stop.stop() {
		reuse = false // the callback ran or runs: c has a past deadline
	}
	if reuse && c.br.Buffered() == 0 {
		t.putIdle(c)
		return
	}
	c.close()
}

// ctxError reports err as the end of ctx when ctx has ended, so that
// callers can test it with errors.Is(err, context.Canceled).
func ctxError(ctx context.Context, err error) error {
	ce := ctx.Err()
	if ce == nil {
		return err
	}
	return &canceledError{ctx: ce, err: err}
}

type canceledError struct{ ctx, err error }

func (e *canceledError) Error() string {
	return "h1transport: request ended: " + e.ctx.Error()
}

// Unwrap gives the context's error first; the connection's error (often
// an i/o timeout caused by the cancellation) second.
func (e *canceledError) Unwrap() []error { return []error{e.ctx, e.err} }

// timeoutError is a net.Error that reports Timeout.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

var (
	errHeaderTimeout  error = &timeoutError{"h1transport: timeout awaiting response headers"}
	errUnexpected101        = errors.New("h1transport: 101 Switching Protocols to a request that asked for no upgrade")
	errTooMany1xx           = fmt.Errorf("h1transport: more than %d informational (1xx) responses", max1xx)
	errHeaderTooLarge       = errors.New("h1transport: response headers too large")
)

// max1xx bounds the informational responses skipped for one request.
const max1xx = 10

func idempotent(method string) bool {
	switch method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}
