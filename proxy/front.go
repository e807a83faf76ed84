package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The fast path (server.fast_path; on by default).
//
// net/http's HTTP/1 server does, per request, work a plain GET does not
// need: a background read goroutine started for every request
// without a body and aborted through a read deadline when the handler
// returns, a second buffered writer that decides between Content-Length
// and chunking, and per-request bookkeeping for features a plain GET does
// not use. What leaving them out buys is measured in docs/performance.md
// (BenchmarkServerRequest's fast-path and net-http cases, and the
// fast-path-off gateway of scripts/bench).
//
// So the parker (park.go), which already holds every idle HTTP/1
// connection outside net/http while it waits for its next request, serves
// the plain requests itself when they arrive:
//
//   - Only a head that arrives whole (up to frontReadSize and
//     server.max_header_bytes), with every line ending in CRLF, no CR or
//     LF anywhere else, no other control character than HTAB, not starting
//     with an empty line, and exactly one Host header line is considered
//     at all (headOK).
//   - The plainest such heads are parsed by parseFastHead (fasthead.go),
//     which FuzzFastHead holds to give exactly what http.ReadRequest gives;
//     the others by net/http's own request parser, http.ReadRequest,
//     reading only those bytes (trackedConn.hold refuses any further read).
//   - The request is served here only if it is a GET over HTTP/1.1 in
//     origin form, without a body or any body framing (no Content-Length,
//     no Transfer-Encoding), without Connection: close, Upgrade, Expect or
//     HTTP2-Settings, and passes the checks net/http's server adds to
//     ReadRequest (valid Host, valid header names and values).
//   - Anything else — a POST, a WebSocket upgrade, a malformed or
//     oversized head, a request line net/http would refuse, a bare LF —
//     goes to net/http's server exactly as received: the bytes read so far
//     are given back first (trackedConn.pending) and the connection is
//     handed over through the parker's listener. net/http then parses,
//     refuses (audited by refusal.go) or serves it as it always did.
//
// The fast path therefore never refuses anything and never reads a request
// otherwise than net/http's parser does; what it replaces is the
// connection loop, the forwarding (fastfwd.go: h1transport.Exchange instead
// of httputil.ReverseProxy) and the response writer (frontWriter),
// which follows net/http's framing rules: Content-Length when the handler
// gave one (a shorter body closes the connection, a longer write fails
// with http.ErrContentLength), otherwise Content-Length for a body of at
// most 2 KiB written before the handler returns, otherwise chunked with
// trailers; no body for 1xx, 204 and 304 and their framing headers
// dropped; Date and a sniffed Content-Type added as net/http adds them;
// header values with CR or LF flattened by http.Header.Write.
//
// Differences from net/http's server, by design: a handler cannot hijack
// a fast-path request (upgrades never take it), a handler's panic closes
// the connection as net/http does, and a client that disconnects while a
// request is served cancels the request's context only once the request
// has run for watchAfter (net/http notices at once, at the cost of a
// goroutine and a read per request), and an upstream's interim 1xx
// answers (103 Early Hints) are not passed on (fasthttp's parser skips
// them; ReverseProxy forwards them).

const (
	// frontReadSize bounds a head the fast path considers; larger ones
	// go to net/http.
	frontReadSize = 8 << 10
	// frontWriteSize is the response buffer.
	frontWriteSize = 4 << 10
	// bufferBeforeLength: a response without Content-Length whose whole
	// body, at most this long, is written before the handler returns gets
	// a Content-Length (net/http's bufferBeforeChunkingSize).
	bufferBeforeLength = 2048
	// frontLinger: how long a connection keeps its buffers after an
	// answer, waiting for its next request, before it goes idle.
	frontLinger = 250 * time.Millisecond
	// watchAfter: a request still being served after this long gets a
	// read that notices the client going away and cancels its context.
	watchAfter = time.Second
)

// front is the fast path of one public server.
type front struct {
	handler           http.Handler
	readHeaderTimeout time.Duration
	maxHeaderBytes    int
	errorLog          *log.Logger
	// base is every request's parent context: it carries
	// http.ServerContextKey as net/http's does (httputil.ReverseProxy
	// aborts a response cut off midway only under a server).
	base context.Context
	// active counts connections serving a request here, for Shutdown.
	active atomic.Int64
}

func newFront(h http.Handler, hs *http.Server) *front {
	limit := hs.MaxHeaderBytes
	if limit <= 0 {
		limit = http.DefaultMaxHeaderBytes
	}
	return &front{handler: h, readHeaderTimeout: hs.ReadHeaderTimeout, maxHeaderBytes: limit, errorLog: hs.ErrorLog,
		base: context.WithValue(context.Background(), http.ServerContextKey, hs)}
}

func (f *front) logf(format string, args ...any) {
	if f.errorLog != nil {
		f.errorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

// frontState is what one connection's fast path keeps while it serves:
// buffers, the response writer and the disconnect watch. States are
// pooled: a connection takes one when a request arrives and gives it back
// when it is idle again.
type frontState struct {
	br  *bufio.Reader
	bw  *bufio.Writer
	out clientOut // what bw writes to
	w   frontWriter
	// The response writer's hooks for the connection being served.
	closing func() bool
	logf    func(string, ...any)
	// head is a copy of the buffered bytes as received while a head is
	// parsed.
	head []byte

	// The watch of a long request (watchAfter): timer starts a read of
	// the connection that cancels the request when the client goes.
	timer   *time.Timer
	mu      sync.Mutex
	phase   int       // watchArmed, watchReading, watchOff
	armedAt time.Time // when the request being watched began
	timerOn bool      // timer is set (it is not stopped between requests)
	t       *trackedConn
	rc      *reqCtx // the request's context, ended when the client goes
	done    chan struct{}
	b       [1]byte
	n       int
	readErr error
}

const (
	watchOff = iota
	watchArmed
	watchReading
)

var frontStates = sync.Pool{New: func() any {
	st := &frontState{br: bufio.NewReaderSize(nil, frontReadSize), bw: bufio.NewWriterSize(nil, frontWriteSize)}
	st.timer = time.AfterFunc(time.Hour, st.startWatch)
	st.timer.Stop()
	return st
}}

// startWatch runs on the timer: the request has been served for
// watchAfter, so a read now notices the client going away.
func (st *frontState) startWatch() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.timerOn = false
	if st.phase != watchArmed {
		return
	}
	// The timer was set for an earlier request: wait for this one's turn.
	if left := watchAfter - time.Since(st.armedAt); left > 0 {
		st.timerOn = true
		st.timer.Reset(left)
		return
	}
	st.phase = watchReading
	st.done = make(chan struct{})
	t, rc, done := st.t, st.rc, st.done
	// The deadline of the wait for this request may still be set (serve
	// leaves it): the watch's read must not end on it.
	_ = t.SetReadDeadline(time.Time{})
	go func() {
		defer close(done)
		n, err := t.Conn.Read(st.b[:])
		st.n, st.readErr = n, err
		if n == 0 {
			rc.cancel() // the client went away (or the read was stopped, below)
		}
	}()
}

// arm starts the watch of one request. The timer is set only when it is
// not already running for an earlier request of the connection (which
// leaves it running): a timer update per request costs more than the
// watch itself, and startWatch sets it again for what is left.
func (st *frontState) arm(t *trackedConn, rc *reqCtx) {
	now := time.Now()
	st.mu.Lock()
	st.phase, st.t, st.rc, st.n, st.readErr, st.armedAt = watchArmed, t, rc, 0, nil, now
	if !st.timerOn {
		st.timerOn = true
		st.timer.Reset(watchAfter)
	}
	st.mu.Unlock()
}

// disarm ends the watch when the request is done. It reports whether the
// connection may carry another request: false when the watch found the
// client gone. A byte the watch read belongs to the next request and is
// given back through t.pending.
func (st *frontState) disarm() bool {
	st.mu.Lock()
	phase := st.phase
	st.phase = watchOff
	t := st.t
	st.t, st.rc = nil, nil
	st.mu.Unlock()
	if phase != watchReading {
		return true
	}
	_ = t.SetReadDeadline(aLongTimeAgo)
	<-st.done
	_ = t.SetReadDeadline(time.Time{})
	if st.n == 1 {
		t.pending = append(t.pending[:0:0], st.b[0])
		return true
	}
	var ne net.Error
	return errors.As(st.readErr, &ne) && ne.Timeout()
}

// aLongTimeAgo is a deadline that stops a read at once.
var aLongTimeAgo = time.Unix(1, 0)

// wait blocks until every connection serving a request here is done, or
// ctx ends.
func (f *front) wait(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for f.active.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// errNotFast: the head is not one the fast path considers.
var errNotFast = errors.New("not for the fast path")

// serve serves requests on t for as long as they take the fast path.
// t.pending holds the first byte. It returns true when t is idle again
// (no byte of a next request read) and still the parker's; false when t
// was closed or handed to net/http.
func (f *front) serve(p *parker, t *trackedConn) bool {
	f.active.Add(1)
	defer f.active.Add(-1)
	st := frontStates.Get().(*frontState)
	st.br.Reset(t)
	st.out.reset(t)
	st.bw.Reset(&st.out)
	st.closing, st.logf = p.isClosed, f.logf // bound once, not per request
	defer func() {
		st.br.Reset(nil)
		st.bw.Reset(nil)
		st.out.t, st.out.pending = nil, nil
		st.out.raw.release()
		st.w.frontReq = frontReq{}
		st.closing, st.logf = nil, nil
		frontStates.Put(st)
	}()
	limit := min(frontReadSize, f.maxHeaderBytes)
	for {
		// Read deadlines cost a timer update each: one is set only before
		// a read. A head already buffered whole (the usual case after the
		// wait for the next request below) needs none, and the one left
		// from that wait is not cleared: nothing reads the connection
		// while the request is served but the watch (startWatch), which
		// clears it first, and every read here sets its own.
		n, err := bufferedHead(st.br, limit)
		if n == 0 && err == nil {
			if f.readHeaderTimeout > 0 {
				_ = t.SetReadDeadline(time.Now().Add(f.readHeaderTimeout))
			}
			n, err = scanHead(st.br, limit)
		}
		if !p.claim(t) {
			return false // the server shut down while the head arrived
		}
		if err != nil {
			if errors.Is(err, errNotFast) {
				return f.handover(p, t, st.br)
			}
			// A read error, the header timeout, or the client gone with
			// a partial head: net/http closes such a connection without
			// an answer too.
			_ = t.Conn.Close()
			return false
		}
		req, ok := f.parse(t, st, n)
		if !ok {
			if t.readTried {
				// Cannot happen with a head that passed headOK; the bytes
				// cannot be given back intact, so fail closed.
				_ = t.Conn.Close()
				return false
			}
			return f.handover(p, t, st.br)
		}
		p.metrics.fast.Inc()
		if !f.serveOne(p, t, st, req) {
			_ = st.out.flushPending()
			_ = t.Conn.Close()
			return false
		}
		if st.br.Buffered() == 0 && len(t.pending) == 0 {
			// A busy connection's next request usually follows within
			// milliseconds: wait for it a moment with the buffers at hand
			// (one read instead of the parker's one-byte read and a
			// second read for the rest), then go idle without them. The
			// answer, when held, is written as the wait begins.
			if st.out.pending == nil {
				_ = t.SetReadDeadline(time.Now().Add(frontLinger))
			} else {
				t.waitDeadline(time.Now())
				timedOut, err := st.out.sendAndWait()
				if err != nil {
					_ = t.Conn.Close()
					return false
				}
				if timedOut {
					// A request that came before the wait began is only
					// seen now: such a client's answers go the usual way
					// from here on (clientOut).
					if st.out.readable() {
						t.noRawWait = true
					}
					_ = t.SetReadDeadline(time.Now().Add(frontLinger - rawWait))
				}
			}
			if _, err := st.br.Peek(1); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && !p.isClosed() {
					return true
				}
				_ = t.Conn.Close()
				return false
			}
			if p.isClosed() {
				_ = t.Conn.Close()
				return false
			}
		} else if err := st.out.flushPending(); err != nil {
			// The next request is already here: the answer goes out first.
			_ = t.Conn.Close()
			return false
		}
	}
}

// handover gives t to net/http's server with every byte read so far.
func (f *front) handover(p *parker, t *trackedConn, br *bufio.Reader) bool {
	_ = t.SetReadDeadline(time.Time{})
	p.metrics.handovers.Inc()
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		t.pending = append(append(make([]byte, 0, n+len(t.pending)), b...), t.pending...)
	}
	p.wake(t)
	return false
}

// scanHead waits until br holds a whole request head and returns its
// length (through the first empty line, which net/http's parser accepts
// as LF or CRLF), errNotFast if none fits in limit bytes, or the read
// error.
func scanHead(br *bufio.Reader, limit int) (int, error) {
	from := 0
	for {
		if n := br.Buffered(); n > 0 {
			b, _ := br.Peek(n)
			if end := headEnd(b, from); end > 0 {
				if end > limit {
					return 0, errNotFast
				}
				return end, nil
			}
			if n >= limit {
				return 0, errNotFast
			}
			from = max(n-2, 0)
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return 0, errNotFast
			}
			return 0, err
		}
	}
}

// bufferedHead is scanHead without reading: the length of a whole head
// already in br, errNotFast for one that cannot fit in limit, and 0 and
// nil when more must be read.
func bufferedHead(br *bufio.Reader, limit int) (int, error) {
	n := br.Buffered()
	if n == 0 {
		return 0, nil
	}
	b, _ := br.Peek(n)
	end := headEnd(b, 0)
	switch {
	case end > limit || end == 0 && n >= limit:
		return 0, errNotFast
	}
	return end, nil
}

// headEnd returns the offset just past the first empty line of b (a LF
// followed by LF or CRLF), looking from from on; 0 if there is none yet.
func headEnd(b []byte, from int) int {
	for i := from; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
	return 0
}

// headOK reports whether head (through its blank line) is one the fast
// path lets http.ReadRequest parse: no leading empty line, every CR
// followed by LF and every LF preceded by CR (so that the head ends where
// net/http's parser will end it, and lines split where it splits them),
// no other control character than HTAB anywhere (net/http's server
// refuses a header value with one, and a request line with one is not in
// origin form), and exactly one line whose field name is Host. These agree
// with what http.ReadRequest and fastRequest check afterwards (it ends a
// head at LF LF too, refuses several Host lines, and fastRequest refuses
// none); they are kept as a second, independent check on the raw bytes,
// so that the fast path never depends on a single parser's reading of
// where lines and the head end. It is one pass over the bytes, eight at
// a time where none is a control character: the session cookie alone is
// several hundred bytes, on every request.
func headOK(head []byte) bool {
	if len(head) < 4 || head[0] == '\r' || head[0] == '\n' {
		return false
	}
	hosts := 0
	line := 0 // start of the current line
	for i := 0; i < len(head); {
		if i+8 <= len(head) && plainWord(binary.LittleEndian.Uint64(head[i:])) {
			i += 8
			continue
		}
		switch headBytes[head[i]] {
		case headCR:
			if i+1 >= len(head) || head[i+1] != '\n' {
				return false
			}
		case headLF:
			if i == 0 || head[i-1] != '\r' {
				return false
			}
			if line > 0 && isHostLine(head[line:i-1]) {
				hosts++
			}
			line = i + 1
		case headCTL:
			return false
		}
		i++
	}
	return hosts == 1
}

// plainWord reports whether none of the 8 bytes in x is a control
// character (below 0x20, or 0x7f): such a word needs no look byte by byte.
func plainWord(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	del := x ^ 0x7f*ones
	return (x-0x20*ones)&^x&highs|(del-ones)&^del&highs == 0
}

// headBytes classifies the bytes of a head for headOK.
var headBytes = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c == '\r':
			t[c] = headCR
		case c == '\n':
			t[c] = headLF
		case c < ' ' && c != '\t' || c == 0x7f:
			t[c] = headCTL
		}
	}
	return t
}()

const (
	headPlain = iota // VCHAR, obs-text, SP, HTAB
	headCR
	headLF
	headCTL
)

// isHostLine reports whether a header line's field name is Host, in any
// case.
func isHostLine(l []byte) bool {
	return len(l) >= 5 && l[4] == ':' && (l[0]|0x20) == 'h' && (l[1]|0x20) == 'o' && (l[2]|0x20) == 's' && (l[3]|0x20) == 't'
}

// parse parses the head of n bytes at the start of br with
// http.ReadRequest and reports whether the request takes the fast path.
// When it does not, br is left as it was (nothing consumed) unless
// t.readTried says the parser tried to read past the head.
func (f *front) parse(t *trackedConn, st *frontState, n int) (*http.Request, bool) {
	br := st.br
	all, _ := br.Peek(br.Buffered())
	if !headOK(all[:n]) {
		return nil, false
	}
	if req, ok := parseFastHead(all[:n]); ok && fastRequest(req) {
		_, _ = br.Discard(n)
		return req, true
	}
	before := len(all)
	// http.ReadRequest canonicalises header names in the buffer itself:
	// keep the bytes as received, to give them back unchanged.
	st.head = append(st.head[:0], all...)
	t.hold, t.readTried = true, false
	req, err := http.ReadRequest(br)
	t.hold = false
	if err == nil && before-br.Buffered() == n && fastRequest(req) {
		return req, true
	}
	if !t.readTried {
		// Nothing was read from the connection, so the buffer still holds
		// the bytes as they were: put them back for net/http.
		br.Reset(t)
		t.pending = append(append(make([]byte, 0, before+len(t.pending)), st.head...), t.pending...)
	}
	return nil, false
}

// fastRequest reports whether a parsed request is one the fast path
// serves: see the comment at the top of this file.
func fastRequest(r *http.Request) bool {
	if r.Method != http.MethodGet || r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.Close {
		return false
	}
	if r.URL == nil || r.URL.Host != "" || !strings.HasPrefix(r.RequestURI, "/") {
		return false
	}
	if r.Body != http.NoBody || r.ContentLength != 0 || len(r.TransferEncoding) != 0 {
		return false
	}
	h := r.Header
	if h["Content-Length"] != nil || h["Transfer-Encoding"] != nil || h["Upgrade"] != nil ||
		h["Expect"] != nil || h["Http2-Settings"] != nil {
		return false
	}
	if r.Host == "" || !httpguts.ValidHostHeader(r.Host) {
		return false
	}
	// Header values need no second look: headOK refused every control
	// character but HTAB in the head, which is what
	// httpguts.ValidHeaderFieldValue refuses.
	for k := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
	}
	return true
}

// serveOne runs the handler for req and finishes its response. It
// reports whether the connection may serve another request.
func (f *front) serveOne(p *parker, t *trackedConn, st *frontState, req *http.Request) (keep bool) {
	if t.remote == "" {
		t.remote = t.RemoteAddr().String()
	}
	req.RemoteAddr = t.remote
	req.TLS = t.tls
	rc := &reqCtx{parent: f.base}
	defer rc.cancel()
	var ctx context.Context = rc
	// req is this loop's own (parsed just now, held by no one else): the
	// context goes into it in place, without WithContext's new Request.
	*req = *req.WithContext(ctx)

	w := &st.w
	w.reset(st.bw, &st.out, st.closing, st.logf)
	watched := st.br.Buffered() == 0 && len(t.pending) == 0
	if watched {
		// With a pipelined request already read, the client cannot be
		// watched without reading that request: it is not.
		st.arm(t, rc)
	}
	defer func() {
		if watched && !st.disarm() {
			keep = false
		}
		if err := recover(); err != nil {
			if err != http.ErrAbortHandler {
				const size = 64 << 10
				buf := make([]byte, size)
				buf = buf[:runtime.Stack(buf, false)]
				f.logf("http: panic serving %v: %v\n%s", req.RemoteAddr, err, buf)
			}
			keep = false
		}
	}()
	f.handler.ServeHTTP(w, req)
	return w.finish()
}
