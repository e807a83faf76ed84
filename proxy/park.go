package proxy

import (
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/internal/idlewatch"
)

// Parking idle keep-alive connections.
//
// net/http keeps, for every open HTTP/1 connection, a goroutine waiting
// for the next request (its stack grows to 8 KiB while serving and never
// shrinks back, because the wait itself is deeper than 2 KiB) and a 4 KiB
// read and a 4 KiB write buffer: about 17 KiB per idle connection, 170 MiB
// for the 10,000 keep-alive connections a city's staff leave open.
//
// When a request begins while its public listener holds
// server.park_idle_after connections or more, the handler wrapper of
// [NewServer] follows the exchange and, once it has completed cleanly,
// takes the connection away from net/http (Hijack) and parks it: a
// small goroutine of its own waits for the next byte with a one-byte read
// under the idle timeout. The serving goroutine ends and its buffers are
// dropped. When the next request's first byte arrives, the connection is
// handed back to the same http.Server through a second listener
// ([parker] is a net.Listener that http.Server.Serve accepts from), with
// that byte (and anything net/http had buffered) replayed first. net/http
// then serves it as a new connection: every byte of every request is
// still parsed by net/http alone; parking reads nothing but the one byte
// it gives back.
//
// With the fast path on (server.fast_path, front.go), every new HTTP/1
// connection starts out parked, and a parked connection's next request is
// first offered to the fast path; only a request it does not take goes to
// net/http as described above. Parking after a net/http exchange still
// needs the threshold.
//
// A connection is parked only when net/http itself would have kept it
// open and nothing of the exchange is left in flight (see parkable):
// HTTP/1.1, no request body, no "Connection: close" either way, a
// response framed by Content-Length and written in full (or a 204/304),
// not a HEAD, not hijacked by a WebSocket, not refused. Anything else is
// left to net/http as before.
//
// Where it can (Linux), the parker holds its idle connections without
// even the small goroutine: an idlewatch.Watch waits for all of them in
// one epoll instance and starts a goroutine for a connection only when
// its next request arrives (or its peer closes it), and closes it when
// the idle timeout passes. That saves the waiting goroutine's stack, 2 to
// 4 KiB per connection (docs/performance.md). A connection is watched
// that way only when nothing of it can be buffered above the socket: a
// plain connection that holds no pending bytes, and a TLS connection only
// after a read of it timed out on the fast path (so crypto/tls holds no
// record that the socket would not announce). A new TLS connection, whose
// first request may have come in with the handshake's last message, and
// one net/http let go of keep their goroutine.

// parker holds the parked connections of one public http.Server and
// hands woken ones back to it as a listener.
type parker struct {
	addr net.Addr
	// threshold: park only while open+parked reaches it (≥ 1).
	threshold int64
	idle      time.Duration
	metrics   parkMetrics

	// open counts the connections net/http serves on this server (StateNew
	// up, StateHijacked and StateClosed down).
	open atomic.Int64
	// nparked is len(parked), read without the lock.
	nparked atomic.Int64

	woken chan *trackedConn
	done  chan struct{}

	// front serves plain requests of parked connections itself
	// (front.go); nil: server.fast_path off, woken connections all go
	// back to net/http.
	front *front

	mu sync.Mutex
	// watch holds idle connections without a goroutine each (see above;
	// watcher). noWatch: it is not available here.
	watch   *idlewatch.Watch
	noWatch bool
	parked  map[*trackedConn]struct{}
	closed  bool
}

// newParker makes the parker of one server; its addr is set by Listen. A
// negative threshold never parks connections net/http serves.
func newParker(threshold int, idle time.Duration, m parkMetrics) *parker {
	if threshold < 0 {
		threshold = 0
	} else {
		threshold = max(threshold, 1)
	}
	return &parker{threshold: int64(threshold), idle: idle, metrics: m,
		woken: make(chan *trackedConn), done: make(chan struct{}), parked: map[*trackedConn]struct{}{}}
}

// watcher is the parker's watch, started on first use (a server that
// never parks a connection holds no epoll instance); nil when the
// parker is closed or the watch is not available here.
func (p *parker) watcher() *idlewatch.Watch {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watch == nil && !p.closed && !p.noWatch {
		if w, err := idlewatch.New(p.watched, p.expired); err == nil {
			p.watch = w
		} else {
			p.noWatch = true
		}
	}
	return p.watch
}

// sleep waits for t's next request on the watch, without a goroutine,
// if it can: t must be parked (enlisted) with nothing buffered above its
// socket. It reports false when the caller must wait itself.
func (p *parker) sleep(t *trackedConn) bool {
	if len(t.pending) > 0 {
		return false
	}
	w := p.watcher()
	if w == nil {
		return false
	}
	c := t.Conn
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	return ok && w.Add(sc, t, time.Now().Add(p.idle))
}

// watched: the watch saw t's next request begin (or its peer close it).
func (p *parker) watched(v any) {
	go p.run(v.(*trackedConn), false)
}

// expired: t stayed idle for the idle timeout on the watch. Closing a
// TLS connection writes its close_notify, which a client that reads
// nothing can hold up for crypto/tls's 5 seconds: not in turn with the
// others that expired at the same time.
func (p *parker) expired(v any) {
	t := v.(*trackedConn)
	p.claim(t)
	if t.tls != nil {
		go t.Conn.Close()
		return
	}
	_ = t.Conn.Close()
}

// crowded reports whether the server holds enough connections to park.
// A threshold of 0 means never (server.park_idle_after -1 with the fast
// path on).
func (p *parker) crowded() bool {
	if p.threshold == 0 {
		return false
	}
	return p.open.Load()+p.nparked.Load() >= p.threshold
}

// connState counts the connections net/http serves.
func (p *parker) connState(st http.ConnState) {
	switch st {
	case http.StateNew:
		p.open.Add(1)
	case http.StateHijacked, http.StateClosed:
		p.open.Add(-1)
	}
}

// park takes over a connection net/http has let go of (hijacked after a
// complete exchange). pending holds what net/http had read past the
// request (a pipelined next request): such a connection is served at
// once, by the fast path or by net/http.
func (p *parker) park(t *trackedConn, pending []byte) {
	t.pending = pending
	if len(pending) > 0 {
		if p.front == nil {
			go p.wake(t)
		} else {
			go p.run(t, true)
		}
		return
	}
	p.idleNow(t)
}

// adopt takes a new connection from the listener (fast path on): it
// waits here for its first request like a parked one.
func (p *parker) adopt(t *trackedConn) {
	p.idleNow(t)
}

// idleNow lists t as parked and waits for its next request: on the watch
// when it can, else on a goroutine. A TLS connection is first read once
// without waiting (settle), since crypto/tls may hold a record already.
func (p *parker) idleNow(t *trackedConn) {
	switch {
	case !p.enlist(t):
	case t.tls != nil:
		go p.settle(t)
	case !p.sleep(t):
		go p.run(t, false)
	}
}

// settle looks at a parked TLS connection once, without waiting: a
// request already read by crypto/tls (one that came with the handshake's
// last message, or after one net/http answered) is served at once; with
// nothing there, crypto/tls holds no whole record, and the connection
// waits on the watch like any other.
func (p *parker) settle(t *trackedConn) {
	_ = t.SetReadDeadline(aLongTimeAgo)
	n, err := t.Conn.Read(t.first[:])
	_ = t.SetReadDeadline(time.Time{})
	switch {
	case n == 1:
		t.pending = t.first[:]
		p.run(t, true)
	case !isTimeout(err):
		p.claim(t) // the client closed it, or it failed
		_ = t.Conn.Close()
	case !p.sleep(t):
		p.run(t, false)
	}
}

// enlist records t as parked; false (and t closed) once the parker is
// closed. A parked connection stays listed while it waits for its next
// request and while that request's head arrives, so that Close closes it
// then too; claim takes it off the list.
func (p *parker) enlist(t *trackedConn) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = t.Conn.Close()
		return false
	}
	p.parked[t] = struct{}{}
	p.nparked.Add(1)
	p.mu.Unlock()
	t.listed = true
	p.metrics.parked.Inc()
	return true
}

// claim takes t off the list of parked connections before a request is
// served (by the fast path or net/http). It reports false when Close has
// taken it already (and closed it). Only the goroutine serving t calls
// it.
func (p *parker) claim(t *trackedConn) bool {
	if !t.listed {
		return true
	}
	t.listed = false
	p.mu.Lock()
	_, mine := p.parked[t]
	if mine {
		delete(p.parked, t)
		p.nparked.Add(-1)
	}
	p.mu.Unlock()
	if mine {
		p.metrics.parked.Dec()
	}
	return mine
}

// isClosed reports whether the server is shutting down.
func (p *parker) isClosed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// run serves a parked connection: it waits for the next request's first
// byte (unless ready: t.pending holds it already), then serves requests
// on the fast path, or hands the connection back to net/http.
func (p *parker) run(t *trackedConn, ready bool) {
	for {
		if !ready && !p.wait(t) {
			return
		}
		ready = false
		if p.front == nil {
			if p.claim(t) {
				p.wake(t)
			}
			return
		}
		if !p.front.serve(p, t) || !p.enlist(t) {
			return
		}
		// Idle again, after a read that timed out: on the watch, or else
		// on a new goroutine, so that an idle connection holds a small
		// stack, not the one that grew while its requests were served
		// (stacks are not shrunk below what the wait itself uses, which
		// over TLS is more than 4 KiB).
		if !p.sleep(t) {
			go p.run(t, false)
		}
		return
	}
}

// wait reads the next request's first byte into t.pending, or closes the
// connection when the idle timeout passes, the client closes it, or the
// server shuts down (Close closes the parked connections, which ends this
// read). It reports whether a byte came.
func (p *parker) wait(t *trackedConn) bool {
	if p.idle > 0 {
		_ = t.SetReadDeadline(time.Now().Add(p.idle))
	}
	n, err := t.Conn.Read(t.first[:])
	if n != 1 || err != nil {
		p.claim(t)
		_ = t.Conn.Close()
		return false
	}
	_ = t.SetReadDeadline(time.Time{})
	t.pending = t.first[:]
	return true
}

// wake hands a connection back to net/http through Accept.
func (p *parker) wake(t *trackedConn) {
	t.busy.Store(false)
	t.off.Store(false)
	t.gone.Store(false)
	select {
	case p.woken <- t:
	case <-p.done:
		_ = t.Conn.Close()
	}
}

// Accept returns the next woken connection, as the public listener would
// have wrapped it.
func (p *parker) Accept() (net.Conn, error) {
	select {
	case t := <-p.woken:
		if t.tls != nil {
			return tlsTrackedConn{t}, nil
		}
		return t, nil
	case <-p.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: p.addr, Err: net.ErrClosed}
	}
}

// Close ends parking: the parked connections are closed (http.Server's
// Shutdown calls it with the server's other listeners).
func (p *parker) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	// Taken off the list here, not by their goroutines as their reads
	// fail: the watched connections have none.
	conns := make([]*trackedConn, 0, len(p.parked))
	for t := range p.parked {
		conns = append(conns, t)
	}
	clear(p.parked)
	p.nparked.Store(0)
	w := p.watch
	p.mu.Unlock()
	p.metrics.parked.Sub(float64(len(conns)))
	if w != nil {
		_ = w.Close() // the watched connections are among conns
	}
	for _, t := range conns {
		_ = t.Conn.Close()
	}
	return nil
}

func (p *parker) Addr() net.Addr { return p.addr }

var (
	parkedOpts = prometheus.GaugeOpts{
		Name: "sekisho_parked_connections",
		Help: "Idle keep-alive HTTP/1 connections waiting outside net/http for their next request (server.fast_path, server.park_idle_after).",
	}
	parksOpts = prometheus.CounterOpts{
		Name: "sekisho_connection_parks_total",
		Help: "Answered keep-alive connections taken from net/http to wait for their next request (server.park_idle_after).",
	}
)

// parkMetrics are the gauge and counters every parker of a gateway
// shares.
type parkMetrics struct {
	parked prometheus.Gauge
	parks  prometheus.Counter
	// fast counts requests served on the fast path (front.go), handovers
	// the connections it gave to net/http's server.
	fast, handovers prometheus.Counter
}

var (
	fastOpts = prometheus.CounterOpts{
		Name: "sekisho_fast_path_requests_total",
		Help: "HTTP/1.1 GET requests served by sekisho's own connection loop (server.fast_path).",
	}
	handoverOpts = prometheus.CounterOpts{
		Name: "sekisho_fast_path_handovers_total",
		Help: "HTTP/1 connections the fast path gave to net/http's server because a request was not a plain GET (server.fast_path).",
	}
)

func newParkMetrics(reg *prometheus.Registry) parkMetrics {
	return parkMetrics{
		parked:    register(reg, prometheus.NewGauge(parkedOpts)),
		parks:     register(reg, prometheus.NewCounter(parksOpts)),
		fast:      register(reg, prometheus.NewCounter(fastOpts)),
		handovers: register(reg, prometheus.NewCounter(handoverOpts)),
	}
}

// exchange follows one HTTP/1 request on a tracked connection: what the
// handler wrote, for deciding whether the connection may be parked. One
// lives in each trackedConn and is reused (requests on a connection are
// sequential), so following costs no allocation.
type exchange struct {
	http.ResponseWriter
	code    int
	written int64
}

func (e *exchange) WriteHeader(code int) {
	if e.code == 0 && code >= 200 {
		e.code = code
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *exchange) Write(p []byte) (int, error) {
	if e.code == 0 {
		e.code = http.StatusOK
	}
	n, err := e.ResponseWriter.Write(p)
	e.written += int64(n)
	return n, err
}

// Flush passes on (httputil.ReverseProxy flushes streamed responses).
func (e *exchange) Flush() {
	if f, ok := e.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach Hijack and deadlines.
func (e *exchange) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// parkable reports whether the exchange on r, answered through e, left the
// connection exactly at the start of the next request, as net/http would
// keep it.
func parkable(r *http.Request, hadBody bool, e *exchange) bool {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 || r.Close || hadBody || r.Method == http.MethodHead {
		return false
	}
	h := e.Header()
	if hasToken(h["Connection"], "close") || len(h["Transfer-Encoding"]) > 0 {
		return false
	}
	switch {
	case e.code == 0:
		// Nothing written: net/http would finish the response itself.
		return false
	case e.code == http.StatusNoContent || e.code == http.StatusNotModified:
		return e.written == 0
	}
	cl := h["Content-Length"]
	if len(cl) != 1 || cl[0] == "" || strings.TrimLeft(cl[0], "0123456789") != "" {
		return false
	}
	n, err := strconv.ParseInt(cl[0], 10, 64)
	return err == nil && n == e.written
}

// hasToken reports whether a comma-separated header holds token.
func hasToken(vals []string, token string) bool {
	for _, v := range vals {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

// tryPark hands the connection of a finished exchange to p, if it may be
// parked; trackHandler calls it only when the server was crowded as the
// request began. w is net/http's own ResponseWriter. It clears t.ex either way:
// once parked, the connection may wake and serve its next request on
// another goroutine, so nothing here touches t after p.park.
func tryPark(p *parker, t *trackedConn, w http.ResponseWriter, r *http.Request, hadBody bool) {
	ok := !t.off.Load() && parkable(r, hadBody, &t.ex)
	t.ex = exchange{} // an idle connection keeps no reference to the response
	if !ok {
		return
	}
	// Counted before the response's tail is flushed, so that a client that
	// has read the answer sees the count.
	p.metrics.parks.Inc()
	// The response's buffered tail goes out first; a failed write leaves
	// the connection to net/http, which closes it.
	if f, ok := w.(interface{ FlushError() error }); !ok || f.FlushError() != nil {
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	if trackerOf(c) != t {
		_ = c.Close()
		return
	}
	var pending []byte
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		pending = append([]byte(nil), b...)
	}
	p.park(t, pending)
}
