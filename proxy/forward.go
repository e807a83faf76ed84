package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/internal/h1transport"
	"github.com/sekisho/sekisho/reqctx"
)

// newForwarder builds the reverse proxy of one route: its own transport
// (TLS to the upstream with a custom CA if configured, a bounded wait for
// response headers), immediate flushing for streamed responses (SSE), and
// WebSocket upgrades, which httputil.ReverseProxy handles natively.
//
// Requests without a body go through h1transport, which does the round
// trip on the handler's goroutine with net/http's own request writer and
// response parser; everything else (uploads, WebSocket, Expect) through
// the http.Transport it falls back to. End to end this cut sekisho's CPU
// per request by about a seventh (docs/performance.md). Fast-path requests
// do not come here: fastForward sends them through the same Transport's
// Exchange.
func (g *Gateway) newForwarder(rc *config.Route) (*httputil.ReverseProxy, *h1transport.Transport, error) {
	if rc.Upstream == nil {
		return nil, nil, errors.New("no upstream URL")
	}
	tr := &http.Transport{
		Proxy: nil, // never use HTTP_PROXY for internal systems
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: rc.Timeout,
		ForceAttemptHTTP2:     false,
	}
	if rc.Upstream.Scheme == "https" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if rc.UpstreamCA != "" {
			pem, err := os.ReadFile(rc.UpstreamCA)
			if err != nil {
				return nil, nil, fmt.Errorf("reading upstream_ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("upstream_ca %s: no PEM certificates", rc.UpstreamCA)
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	up := rc.Upstream
	preserve := rc.PreserveHost
	rt := h1transport.New(h1transport.Options{
		DialContext:           tr.DialContext,
		TLSClientConfig:       tr.TLSClientConfig,
		TLSHandshakeTimeout:   tr.TLSHandshakeTimeout,
		MaxIdleConnsPerHost:   tr.MaxIdleConnsPerHost,
		IdleConnTimeout:       tr.IdleConnTimeout,
		ResponseHeaderTimeout: tr.ResponseHeaderTimeout,
		Fallback:              tr,
	})
	rp := &httputil.ReverseProxy{
		Transport:  rt,
		BufferPool: copyBuffers,
		// 0: ReverseProxy flushes streamed responses (text/event-stream, or
		// no Content-Length) after every write by itself; flushing every
		// write of every response (-1) cost 27% of the gateway's CPU.
		FlushInterval: 0,
		ErrorLog:      nil,
		Rewrite: func(pr *httputil.ProxyRequest) {
			info := reqctx.From(pr.In.Context())
			out := pr.Out
			out.URL.Scheme = up.Scheme
			out.URL.Host = up.Host
			out.URL.Path = joinPath(up.Path, info.Path)
			out.URL.RawPath = ""
			out.URL.RawQuery = pr.In.URL.RawQuery
			if !preserve {
				out.Host = ""
			}
			g.upstreamHeaders(out, info)
		},
		ModifyResponse: func(res *http.Response) error {
			cleanResponseHeaders(res.Header)
			return nil
		},
		ErrorHandler: g.upstreamError,
	}
	return rp, rt, nil
}

// upstreamError answers a request whose upstream round trip failed before
// a response began: nothing when the client went away (recorded as 499),
// 504 after a timeout, 502 otherwise.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	info := reqctx.From(r.Context())
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nothing to answer, nothing wrong upstream.
		if rw, ok := w.(*recordingWriter); ok && rw.code == 0 {
			rw.code = 499
		}
		return
	}
	status := http.StatusBadGateway
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		status = http.StatusGatewayTimeout
	}
	g.metrics.upstreamErrors.WithLabelValues(info.Route).Inc()
	g.log.Warn("upstream error", "request_id", info.RequestID, "route", info.Route, "err", err)
	g.errorPage(w, r, info, status, messageFor(status))
}

// copyBuffers recycles the 32 KiB body-copy buffers across requests
// (httputil.ReverseProxy allocates one per request without a pool).
var copyBuffers = &bufferPool{p: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}

const copyBufferSize = 32 << 10

// bufferPool pools array pointers: a slice of the whole array converts
// back to the same pointer, so Put allocates nothing (pooling *[]byte
// would allocate a new slice header on every Put).
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte { return b.p.Get().(*[copyBufferSize]byte)[:] }

func (b *bufferPool) Put(v []byte) {
	if len(v) == copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(v))
	}
}

// upstreamHeaders sets what the upstream may trust: the forwarding headers
// rebuilt by sekisho, the request id, and the identity.
func (g *Gateway) upstreamHeaders(out *http.Request, info *reqctx.Info) {
	cookie := ""
	if g.authn != nil {
		cookie = g.authn.CookieName()
	}
	cleanRequestHeaders(out.Header, cookie)
	var set gatewayValues
	g.gatewayValues(info, &set)
	// Every value goes in at once (canonical keys, capped slices): the same
	// headers as Header.Set, in one allocation.
	vals := make([]string, set.n)
	for i, e := range set.kv[:set.n] {
		vals[i] = e.v
		out.Header[e.k] = vals[i : i+1 : i+1]
	}
}

// gatewayValues are the header fields the gateway sets upstream, with
// canonical names, in the order they are sent.
type gatewayValues struct {
	kv [9]struct{ k, v string }
	n  int
}

func (s *gatewayValues) add(k, v string) {
	s.kv[s.n].k, s.kv[s.n].v = k, v
	s.n++
}

// gatewayValues fills set with the forwarding headers, the request id and
// the identity (user, roles, device, class, and the signed assertion).
func (g *Gateway) gatewayValues(info *reqctx.Info, set *gatewayValues) {
	set.add("X-Forwarded-For", info.IPString())
	set.add("X-Forwarded-Host", info.Host)
	if info.TLS {
		set.add("X-Forwarded-Proto", "https")
	} else {
		set.add("X-Forwarded-Proto", "http")
	}
	set.add("X-Request-Id", info.RequestID)
	if info.User != "" {
		set.add("X-Sekisho-User", info.User)
		set.add("X-Sekisho-Roles", strings.Join(info.Roles, ","))
		if info.Device != "" {
			set.add("X-Sekisho-Device", info.Device)
		}
		set.add("X-Sekisho-Class", info.Class)
		if g.authn != nil {
			if a, err := g.authn.Assertion(info); err == nil {
				set.add("X-Sekisho-Assertion", a)
			} else {
				g.log.Error("signing assertion", "request_id", info.RequestID, "err", err)
			}
		}
	}
}

// forward sends the request to the route's upstream. Only WebSocket
// upgrades are forwarded: any other Upgrade (h2c, custom tunnels) would turn
// the connection into a tunnel whose requests no one decides or records, so
// it is dropped and the request is served as plain HTTP.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, info *reqctx.Info, t target) {
	if up := firstValue(r.Header, "Upgrade"); up != "" && !strings.EqualFold(strings.TrimSpace(up), "websocket") {
		r.Header.Del("Upgrade")
		r.Header.Del("Http2-Settings")
	}
	if r.Body != nil && r.Body != http.NoBody {
		d := g.cfg.Server.BodyReadTimeout
		if d <= 0 {
			d = 60 * time.Second
		}
		r.Body = &deadlineBody{rc: r.Body, ctl: http.NewResponseController(w), d: d}
	}
	// A fast-path request (front.go: a GET without body, framing or
	// upgrade) is forwarded by fastForward.
	if rw, ok := w.(*recordingWriter); ok && t.route.h1 != nil {
		if _, ok := rw.ResponseWriter.(*frontWriter); ok && r.Method == http.MethodGet && r.Body == http.NoBody && r.Header["Upgrade"] == nil {
			g.fastForward(w, r, info, t)
			return
		}
	}
	t.route.proxy.ServeHTTP(w, r)
}

// deadlineBody gives each read of a request body its own deadline, so a
// client that stops sending mid-body is cut off after BodyReadTimeout
// while a slow but steady 2 GiB upload is not.
type deadlineBody struct {
	rc  io.ReadCloser
	ctl *http.ResponseController
	d   time.Duration
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	_ = b.ctl.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.rc.Read(p)
	if err == io.EOF {
		// Done: the connection's own timeouts apply again. After any other
		// error the deadline stays, so the server cannot hang draining a
		// stalled body either.
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.rc.Close() }

// cleanResponseHeaders removes what an upstream must not say to the
// browser: sekisho's own cookies (a compromised app could plant a session
// or end one) and its own request id (the client keeps sekisho's).
func cleanResponseHeaders(h http.Header) {
	if vals := h.Values("Set-Cookie"); len(vals) > 0 {
		kept := vals[:0:0]
		for _, v := range vals {
			if sekishoCookie(v) {
				continue
			}
			kept = append(kept, v)
		}
		h.Del("Set-Cookie")
		for _, v := range kept {
			h.Add("Set-Cookie", v)
		}
	}
	h.Del("X-Request-Id")
}

// sekishoCookie reports whether a Set-Cookie value sets one of sekisho's
// own cookies (a name starting with __Host-sekisho, in any case).
func sekishoCookie(v string) bool {
	name, _, _ := strings.Cut(strings.TrimSpace(v), "=")
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(name)), "__host-sekisho")
}

func joinPath(base, p string) string {
	if base == "" || base == "/" {
		return p
	}
	return strings.TrimSuffix(base, "/") + p
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// recordingWriter remembers the status and counts the bytes of a response,
// and passes through flushing and hijacking (SSE, WebSocket).
type recordingWriter struct {
	http.ResponseWriter
	code  int
	bytes int64
}

func (w *recordingWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *recordingWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach Flush, Hijack and deadlines.
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush is needed by httputil.ReverseProxy's immediate flushing.
func (w *recordingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack is needed for WebSocket upgrades.
func (w *recordingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

var _ http.Flusher = (*recordingWriter)(nil)
var _ http.Hijacker = (*recordingWriter)(nil)
