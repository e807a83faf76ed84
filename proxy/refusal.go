package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/reqctx"
)

// Requests that net/http refuses itself — a request line or header it
// cannot parse, headers over MaxHeaderBytes, a transfer coding it does not
// implement, an Expect it does not meet — are answered by net/http before
// any handler runs, by writing a response straight to the connection. The
// gateway never sees them, so without help they get no request id and no
// audit record.
//
// A trackedConn wraps the plaintext HTTP/1 byte stream of one public
// connection (the TCP connection of the plain listener, the *tls.Conn of
// the HTTPS listener) and recognises those responses: a write that starts
// with an HTTP/1 status line of 4xx or 5xx while no handler owns the
// connection can only come from net/http itself (unless the client has
// already gone, see [trackedConn.gone]). It records the refusal
// through the gateway's audit path and adds an X-Request-Id header to the
// response naming the record.
//
// # When a handler owns the connection
//
// The handler wrapper of [NewServer] marks the connection busy before the
// gateway runs. net/http writes the tail of a handler's response after
// the handler returns (finishRequest), and may even read the unread
// request body before it writes the header, so the mark is cleared only
// when net/http reports the connection idle (http.StateIdle), which it
// does after the whole response is on the wire and before it reads the
// next request. A hijacked connection (WebSocket) is never inspected
// again. HTTP/2 connections are not wrapped at all: net/http's HTTP/2
// server answers malformed frames and headers with stream or connection
// errors, not with HTTP/1 responses.

// Reasons of refusal records, by the status net/http answered.
const (
	// ReasonMalformedRequest: net/http could not parse the request line
	// or a header (400), or refused it for another 4xx/5xx not below.
	ReasonMalformedRequest = "malformed_request"
	// ReasonHeaderTooLarge: headers over server.max_header_bytes (431).
	ReasonHeaderTooLarge = "header_too_large"
	// ReasonUnsupportedTransferEncoding: a Transfer-Encoding net/http does
	// not implement (501).
	ReasonUnsupportedTransferEncoding = "unsupported_transfer_encoding"
	// ReasonExpectationFailed: an Expect header other than 100-continue
	// (417).
	ReasonExpectationFailed = "expectation_failed"
)

// ruleNetHTTP names net/http as the deciding rule of a refusal record.
const ruleNetHTTP = "net/http"

// refusal is net/http's own error response, as parsed from one write.
type refusal struct {
	// code is the status code.
	code int
	// text is net/http's short text for the log and the audit record:
	// the status line after the version, and the body if it says more
	// ("400 Bad Request: malformed Host header", "501 Not Implemented:
	// Unsupported transfer encoding"). Printable ASCII only, bounded.
	text string
	// lineEnd is the offset just past the status line's CRLF, where the
	// X-Request-Id header is inserted.
	lineEnd int
}

// Bounds for what parseRefusal looks at: net/http's error responses are a
// status line, two headers and a one-line body.
const (
	maxStatusLine  = 256
	maxRefusalText = 200
)

// parseRefusal recognises a write that begins with an HTTP/1 status line
// of 4xx or 5xx. It never fails on odd input: anything else is reported
// as not a refusal, and the bytes go out unchanged.
func parseRefusal(p []byte) (refusal, bool) {
	const prefix = "HTTP/1."
	if len(p) < len(prefix)+6 || string(p[:len(prefix)]) != prefix {
		return refusal{}, false
	}
	if v := p[len(prefix)]; (v != '0' && v != '1') || p[len(prefix)+1] != ' ' {
		return refusal{}, false
	}
	rest := p[len(prefix)+2:]
	head := rest
	if len(head) > maxStatusLine {
		head = head[:maxStatusLine]
	}
	eol := bytes.Index(head, []byte("\r\n"))
	if eol < 3 {
		return refusal{}, false
	}
	line := head[:eol]
	for _, c := range line[:3] {
		if c < '0' || c > '9' {
			return refusal{}, false
		}
	}
	if len(line) > 3 && line[3] != ' ' {
		return refusal{}, false
	}
	code, _ := strconv.Atoi(string(line[:3]))
	if code < 400 || code > 599 {
		return refusal{}, false
	}
	ref := refusal{code: code, lineEnd: len(prefix) + 2 + eol + 2}
	text := printable(line, maxRefusalText)
	if i := bytes.Index(rest, []byte("\r\n\r\n")); i >= 0 {
		body := rest[i+4:]
		if j := bytes.IndexAny(body, "\r\n"); j >= 0 {
			body = body[:j]
		}
		if b := printable(body, maxRefusalText); b != "" && b != text {
			text += ": " + b
		}
	}
	if len(text) > maxRefusalText {
		text = text[:maxRefusalText]
	}
	ref.text = text
	return ref, true
}

// printable keeps at most n bytes of printable ASCII of b, dropping the
// rest, so that attacker-influenced bytes never reach the log or the
// trail as control characters.
func printable(b []byte, n int) string {
	out := make([]byte, 0, min(len(b), n))
	for _, c := range b {
		if len(out) == n {
			break
		}
		if c >= 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}

// reason is the audit reason for a refusal's status.
func (r refusal) reason() string {
	switch r.code {
	case http.StatusRequestHeaderFieldsTooLarge:
		return ReasonHeaderTooLarge
	case http.StatusNotImplemented:
		return ReasonUnsupportedTransferEncoding
	case http.StatusExpectationFailed:
		return ReasonExpectationFailed
	}
	return ReasonMalformedRequest
}

// injectRequestID returns p with an X-Request-Id header after the status
// line.
func injectRequestID(p []byte, lineEnd int, id string) []byte {
	const name = "X-Request-Id: "
	out := make([]byte, 0, len(p)+len(name)+len(id)+2)
	out = append(out, p[:lineEnd]...)
	out = append(out, name...)
	out = append(out, id...)
	out = append(out, "\r\n"...)
	return append(out, p[lineEnd:]...)
}

// trackedConn is one public HTTP/1 connection; see the comment at the top
// of this file.
type trackedConn struct {
	net.Conn
	rec *refusalRecorder
	// tls is the handshake's state on the HTTPS listener, nil on plain.
	tls *tls.ConnectionState
	// busy: a handler owns the connection (from the start of the handler
	// until net/http reports the connection idle again).
	busy atomic.Bool
	// off: the connection was hijacked; its bytes are no longer net/http's.
	off atomic.Bool
	// gone: a read found the client gone (end of stream, reset). net/http
	// answers a request cut off that way with 400, to nobody: that is a
	// client disconnecting, not a request refused, and is not recorded.
	gone atomic.Bool

	// parker parks the connection between requests when the server is
	// crowded (park.go); nil: never.
	parker *parker
	// ex follows the current request's response (park.go).
	ex exchange
	// pending is read before the connection itself: what a parked
	// connection read while waiting, given back to net/http.
	pending []byte
	first   [1]byte

	// The fast path (front.go): hold makes Read fail while
	// http.ReadRequest parses a head that must be whole in the buffer, and
	// readTried records that it tried; remote is RemoteAddr's string.
	hold, readTried bool
	remote          string
	// listed: t is in its parker's list of parked connections (park.go).
	listed bool
	// raw is the socket of a plain connection for the fast path's writes
	// (clientout_unix.go), made once (rawTried); rd reads it (a
	// sockio.Reader: see that package for why), from the first time the
	// fast path serves the connection on.
	raw      syscall.RawConn
	rd       io.Reader
	rawTried bool
	// noRawWait: the client pipelines (clientout.go); answers go the usual
	// way.
	noRawWait bool
	// rawDL is the read deadline (Unix nanoseconds) that serve set for its
	// wait after an answer (rawWait), 0 once any other deadline has been
	// set since: every deadline goes through SetReadDeadline and
	// SetDeadline below, net/http's too. serve sets the wait's deadline
	// again only when the one in place ends too soon or too late
	// (waitDeadline): a timer update saved on most requests of a busy
	// connection.
	rawDL atomic.Int64
}

// SetReadDeadline sets the connection's read deadline and forgets the
// wait's (rawDL).
func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.rawDL.Store(0)
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets both deadlines and forgets the wait's (rawDL).
func (c *trackedConn) SetDeadline(t time.Time) error {
	c.rawDL.Store(0)
	return c.Conn.SetDeadline(t)
}

// errHold is what Read returns while the fast path parses a head.
var errHold = errors.New("proxy: read past a request head")

// Read notes when the client has gone away.
func (c *trackedConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.hold {
		c.readTried = true
		return 0, errHold
	}
	var n int
	var err error
	if c.rd != nil {
		n, err = c.rd.Read(p)
	} else {
		n, err = c.Conn.Read(p)
	}
	if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)) {
		c.gone.Store(true)
	}
	return n, err
}

// tlsTrackedConn is a trackedConn over TLS. Its ConnectionState method
// makes net/http fill Request.TLS exactly as for a *tls.Conn.
type tlsTrackedConn struct{ *trackedConn }

func (c tlsTrackedConn) ConnectionState() tls.ConnectionState { return *c.tls }

// trackerOf returns the trackedConn behind a connection net/http serves,
// or nil for an untracked one (HTTP/2, the metrics listener).
func trackerOf(c net.Conn) *trackedConn {
	switch t := c.(type) {
	case *trackedConn:
		return t
	case tlsTrackedConn:
		return t.trackedConn
	}
	return nil
}

// Write passes p on, unless it is net/http's own refusal: then the
// refusal is recorded and the response carries the record's request id.
func (c *trackedConn) Write(p []byte) (int, error) {
	if c.busy.Load() || c.off.Load() || c.gone.Load() {
		return c.Conn.Write(p)
	}
	ref, ok := parseRefusal(p)
	if !ok {
		return c.Conn.Write(p)
	}
	// net/http closes the connection after a refusal; nothing more of it
	// is inspected.
	c.off.Store(true)
	id := newRequestID()
	c.rec.record(c, id, ref)
	out := injectRequestID(p, ref.lineEnd, id)
	n, err := c.Conn.Write(out)
	// Report progress in p's terms.
	added := len(out) - len(p)
	switch {
	case n >= ref.lineEnd+added:
		n -= added
	case n > ref.lineEnd:
		n = ref.lineEnd
	}
	return n, err
}

// CloseWrite half-closes the connection, as net/http does after a 431.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// trackingListener wraps the plain listener's connections.
type trackingListener struct {
	net.Listener
	rec    *refusalRecorder
	parker *parker
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &trackedConn{Conn: c, rec: l.rec, parker: l.parker}, nil
}

type trackedConnKey struct{}

// connContext puts a tracked connection in its requests' context, for the
// handler wrapper.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if t := trackerOf(c); t != nil {
		return context.WithValue(ctx, trackedConnKey{}, t)
	}
	return ctx
}

// connState clears the busy mark once net/http has written a handler's
// whole response, and retires hijacked connections (a parked one is
// enlisted again when it wakes).
func connState(c net.Conn, st http.ConnState) {
	t := trackerOf(c)
	if t == nil {
		return
	}
	switch st {
	case http.StateIdle:
		t.busy.Store(false)
	case http.StateHijacked:
		t.off.Store(true)
	}
}

// trackHandler marks the connection busy before h runs, and afterwards
// parks the connection if its server is crowded (park.go).
func trackHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := r.Context().Value(trackedConnKey{}).(*trackedConn)
		if t == nil {
			h.ServeHTTP(w, r)
			return
		}
		t.busy.Store(true)
		if t.parker == nil || !t.parker.crowded() {
			// Below the threshold (the usual case) nothing is followed:
			// the request pays for no wrapper.
			h.ServeHTTP(w, r)
			return
		}
		hadBody := r.Body != nil && r.Body != http.NoBody
		t.ex = exchange{ResponseWriter: w}
		h.ServeHTTP(&t.ex, r)
		tryPark(t.parker, t, w, r, hadBody)
	})
}

// refusalRecorder writes refusal records through the gateway's audit path
// and counts refusals and failed TLS handshakes.
type refusalRecorder struct {
	gw         *Gateway
	refused    *prometheus.CounterVec
	handshakes *prometheus.CounterVec
}

func newRefusalRecorder(gw *Gateway) *refusalRecorder {
	r := &refusalRecorder{gw: gw}
	reg := gw.metrics.Registry()
	r.refused = register(reg, prometheus.NewCounterVec(refusedOpts, []string{"code"}))
	r.handshakes = register(reg, prometheus.NewCounterVec(handshakeOpts, []string{"reason"}))
	return r
}

var (
	refusedOpts = prometheus.CounterOpts{
		Name: "sekisho_refused_by_net_http_total",
		Help: "Requests refused by net/http before the gateway saw them (malformed request line or headers, oversized headers…), by status code.",
	}
	handshakeOpts = prometheus.CounterOpts{
		Name: "sekisho_tls_handshake_failures_total",
		Help: "TLS handshakes that failed on the HTTPS listener, by reason (http_to_https, timeout, closed, error).",
	}
)

// register registers c, or returns the collector registered already
// under the same name (a second Server on the same gateway's registry).
func register[T prometheus.Collector](reg *prometheus.Registry, c T) T {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if old, ok := are.ExistingCollector.(T); ok {
				return old
			}
		}
		panic(err)
	}
	return c
}

// record writes the audit record of one refusal: the same shape as the
// gateway's own refusals (event access, decision error), with rule
// "net/http", the reason and net/http's text as reasons, and the device
// certificate's identity if the TLS client presented one.
func (r *refusalRecorder) record(c *trackedConn, id string, ref refusal) {
	g := r.gw
	st := g.state.Load()
	info := &reqctx.Info{RequestID: id, Received: g.now(), TLS: c.tls != nil}
	if ra := c.RemoteAddr(); ra != nil {
		info.IP = peerAddr(ra.String())
	}
	info.Zone = st.cfg.ZoneOf(info.IP)
	if c.tls != nil && len(c.tls.PeerCertificates) > 0 && g.devices != nil {
		if dev, fp, user, err := g.devices.Verify(c.tls.PeerCertificates); err != nil {
			info.CertError = g.devices.Code(err)
		} else {
			info.Device, info.CertFP, info.CertUser = dev, fp, user
		}
	}
	code := strconv.Itoa(ref.code)
	r.refused.WithLabelValues(code).Inc()
	g.metrics.requests.WithLabelValues("-", code).Inc()
	g.log.Info("request refused by net/http", "request_id", id, "status", ref.code, "reason", ref.reason(),
		"text", ref.text, "ip", info.IP, "tls", info.TLS)
	g.record(context.Background(), &Entry{Info: info, Event: "access", Decision: "error", Enforced: true,
		Rule: ruleNetHTTP, Reasons: []string{ref.reason(), ref.text}, Status: ref.code}, false)
}

// handshakeFailed counts a failed TLS handshake. It is not a request and
// is not audited.
func (r *refusalRecorder) handshakeFailed(reason string) {
	r.handshakes.WithLabelValues(reason).Inc()
}
