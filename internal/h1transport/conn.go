package h1transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"time"
)

// connKey names a pool: the URL's scheme and host as written in the
// request URL (the port is added only when dialing).
type connKey struct {
	https bool
	host  string
}

// conn is one upstream connection. Only the goroutine that holds it (out
// of the pool) uses it, except onCancel, which only moves the deadline.
type conn struct {
	key      connKey
	nc       net.Conn // the TLS connection for https
	raw      net.Conn // the TCP connection under nc
	br       *bufio.Reader
	bw       *bufio.Writer
	tlsState *tls.ConnectionState
	onCancel func() // bound once: context.AfterFunc allocates no closure per request
	peek     *peeker
	rawio    *rawIO    // plain TCP on unix: sendRaw; nil otherwise
	rd       io.Reader // what Read reads: nc, or on unix for plain TCP its socket (sockio.Reader)
	idleAt   time.Time
	// takenAt is when takeIdle took c from the pool, for begin; zero on
	// a new connection and after begin.
	takenAt time.Time
	// rdl is the read deadline begin set, while it stays set (headRead
	// leaves it when the response is buffered whole); zero: none.
	rdl time.Time

	nread int64 // bytes read from nc
	limit int64 // bytes that may still be read while reading headers; <0: no limit
	werr  error // the last write error of nc
}

// Read feeds the bufio.Reader: it counts bytes (to know whether anything
// of a response arrived) and enforces the header size limit.
func (c *conn) Read(p []byte) (int, error) {
	if c.limit >= 0 {
		if c.limit == 0 {
			return 0, errHeaderTooLarge
		}
		if int64(len(p)) > c.limit {
			p = p[:c.limit]
		}
	}
	n, err := c.rd.Read(p)
	c.nread += int64(n)
	if c.limit >= 0 {
		c.limit -= int64(n)
	}
	return n, err
}

// Write feeds the bufio.Writer and remembers a connection failure, which
// Request.Write does not tell apart from its own errors.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.nc.Write(p)
	if err != nil {
		c.werr = err
	}
	return n, err
}

func (c *conn) close() { c.nc.Close() }

// aLongTimeAgo is a deadline that has passed: setting it interrupts the
// connection's pending and future reads and writes.
var aLongTimeAgo = time.Unix(1, 0)

// dialConn opens a connection for key, with the TLS handshake for https.
func (t *Transport) dialConn(ctx context.Context, key connKey, hostname string) (*conn, error) {
	addr := key.host
	if !hasPort(addr) {
		port := "80"
		if key.https {
			port = "443"
		}
		addr = net.JoinHostPort(hostname, port)
	}
	raw, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &conn{key: key, nc: raw, raw: raw, limit: -1}
	if key.https {
		cfg := t.tlsConfig
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName = hostname
		}
		tc := tls.Client(raw, cfg)
		hctx := ctx
		if t.tlsTimeout > 0 {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, t.tlsTimeout)
			defer cancel()
		}
		if err := tc.HandshakeContext(hctx); err != nil {
			raw.Close()
			return nil, err
		}
		st := tc.ConnectionState()
		c.tlsState = &st
		c.nc = tc
	}
	c.br = bufio.NewReaderSize(c, headBuffer)
	c.bw = bufio.NewWriterSize(c, 4<<10)
	nc := c.nc
	c.onCancel = func() { nc.SetDeadline(aLongTimeAgo) }
	newPeeker(c)
	c.rd = c.nc
	if !key.https {
		c.rawio = newRawIO(raw)
		if r := newReader(raw); r != nil {
			c.rd = r
		}
	}
	return c, nil
}

// hasPort reports whether host ("h", "h:p", "[v6]", "[v6]:p") has a port.
func hasPort(host string) bool {
	return strings.LastIndexByte(host, ':') > strings.LastIndexByte(host, ']')
}

// headBuffer is a connection's read buffer, and so the largest response
// head [Transport.Exchange] reads (fasthttp's parser needs the whole head
// in the buffer); RoundTrip's http.ReadResponse reads longer heads line by
// line, up to Options.MaxResponseHeaderBytes.
const headBuffer = 16 << 10
