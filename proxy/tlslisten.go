package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// tlsListener terminates TLS for the HTTPS listener itself, so that the
// plaintext HTTP/1 stream can be wrapped in a [trackedConn] (net/http's
// own refusals are written inside TLS; see refusal.go).
//
// Each accepted connection's handshake runs in its own goroutine under a
// deadline, so that a client that never finishes it holds nothing but its
// own connection. Then:
//
//   - ALPN "h2": the *tls.Conn itself goes to net/http, which serves
//     HTTP/2 on it exactly as behind tls.NewListener (its handshake is
//     already complete, so net/http's HandshakeContext returns at once).
//   - otherwise (http/1.1 or no ALPN): a [tlsTrackedConn] around the
//     *tls.Conn; its ConnectionState method makes net/http fill
//     Request.TLS (peer certificates included) as for a *tls.Conn.
//
// A client that speaks plain HTTP to the HTTPS port gets net/http's
// answer, "400 Bad Request … Client sent an HTTP request to an HTTPS
// server.", written on the raw connection. Failed handshakes are counted
// in sekisho_tls_handshake_failures_total and never audited: they are not
// requests.
type tlsListener struct {
	raw     net.Listener
	cfg     *tls.Config
	timeout time.Duration
	rec     *refusalRecorder
	log     *slog.Logger
	parker  *parker

	start  sync.Once
	conns  chan net.Conn
	errs   chan error
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// defaultHandshakeTimeout bounds a handshake when server.read_header_timeout
// is zero: a handshake is never allowed to hang.
const defaultHandshakeTimeout = 10 * time.Second

func newTLSListener(raw net.Listener, cfg *tls.Config, timeout time.Duration, rec *refusalRecorder) *tlsListener {
	if timeout <= 0 {
		timeout = defaultHandshakeTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &tlsListener{raw: raw, cfg: cfg, timeout: timeout, rec: rec, log: rec.gw.log,
		conns: make(chan net.Conn), errs: make(chan error), ctx: ctx, cancel: cancel}
}

// Accept returns the next connection whose handshake succeeded. The accept
// loop starts on the first call, that is once http.Server.Serve has set up
// HTTP/2 (which may add to the shared tls.Config).
func (l *tlsListener) Accept() (net.Conn, error) {
	l.start.Do(func() {
		l.wg.Add(1)
		go l.acceptLoop()
	})
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.ctx.Done():
		return nil, &net.OpError{Op: "accept", Net: l.raw.Addr().Network(), Addr: l.raw.Addr(), Err: net.ErrClosed}
	}
}

// acceptLoop accepts raw connections and starts their handshakes. Accept
// errors go to Accept's caller (net/http retries temporary ones after a
// pause, which this loop waits for by blocking on the hand-over).
func (l *tlsListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.raw.Accept()
		if err != nil {
			select {
			case l.errs <- err:
			case <-l.ctx.Done():
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(raw net.Conn) {
	defer l.wg.Done()
	_ = raw.SetDeadline(time.Now().Add(l.timeout))
	tc := tls.Server(raw, l.cfg)
	if err := tc.HandshakeContext(l.ctx); err != nil {
		reason := "error"
		var re tls.RecordHeaderError
		var ne net.Error
		switch {
		case errors.As(err, &re) && re.Conn != nil && recordLooksLikeHTTP(re.RecordHeader):
			// As net/http answers it behind tls.NewListener.
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			reason = "http_to_https"
		case errors.As(err, &ne) && ne.Timeout():
			reason = "timeout"
		case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, context.Canceled):
			reason = "closed"
		}
		_ = raw.Close()
		l.rec.handshakeFailed(reason)
		l.log.Debug("TLS handshake failed", "remote", raw.RemoteAddr().String(), "reason", reason, "err", err)
		return
	}
	_ = raw.SetDeadline(time.Time{})
	var c net.Conn = tc
	st := tc.ConnectionState()
	if st.NegotiatedProtocol != "h2" {
		c = tlsTrackedConn{&trackedConn{Conn: tc, rec: l.rec, tls: &st, parker: l.parker}}
	}
	select {
	case l.conns <- c:
	case <-l.ctx.Done():
		_ = tc.Close()
	}
}

// recordLooksLikeHTTP reports whether the first five bytes of a TLS record
// are a plaintext HTTP request (net/http's tlsRecordHeaderLooksLikeHTTP).
func recordLooksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// Close stops accepting and aborts handshakes in progress.
func (l *tlsListener) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		l.closeErr = l.raw.Close()
	})
	return l.closeErr
}

// wait returns once the accept loop and every handshake goroutine have
// ended (after Close).
func (l *tlsListener) wait() { l.wg.Wait() }

func (l *tlsListener) Addr() net.Addr { return l.raw.Addr() }
