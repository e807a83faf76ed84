package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/sekisho/sekisho/config"
)

// Server owns the gateway's listeners: HTTPS (with optional client
// certificates and HTTP/2), an optional plain HTTP listener, and the
// metrics listener. Shutdown stops accepting and lets in-flight requests
// finish up to the configured deadline.
//
// On the public listeners, the requests net/http refuses before the
// gateway runs (malformed request line or headers, 431…) are audited and
// answered with an X-Request-Id too (refusal.go); for that, TLS is
// terminated by sekisho's own listener (tlslisten.go).
type Server struct {
	gw      *Gateway
	log     *slog.Logger
	servers []*http.Server
	public  []bool // servers[i] serves the gateway (HTTPS or plain HTTP)
	lns     []net.Listener
	parkers []*parker // parkers[i] parks servers[i]'s idle connections; nil: none
	ready   func() error
	rec     *refusalRecorder
	// tlsConf is the HTTPS listener's TLS configuration (nil without
	// HTTPS), kept apart from http.Server.TLSConfig, which Serve's HTTP/2
	// set-up writes.
	tlsConf *tls.Config
}

// ServerOptions tunes [NewServer].
type ServerOptions struct {
	// TLSCert provides the gateway's certificate; nil disables HTTPS.
	TLSCert *tls.Certificate
	// GetCertificate, if set, is used instead of TLSCert (reloadable).
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// ClientCAs lists the device CAs named in acceptable-CA hints. The
	// certificate itself is verified by the gateway's DeviceVerifier, so a
	// missing or bad certificate never fails the handshake.
	ClientCAs *x509.CertPool
	// Ready reports readiness for /readyz.
	Ready func() error
}

// NewServer prepares listeners for gw as configured. Call Serve to start.
func NewServer(gw *Gateway, opts ServerOptions) (*Server, error) {
	cfg := gw.cfg.Server
	s := &Server{gw: gw, log: gw.log, ready: opts.Ready, rec: newRefusalRecorder(gw)}
	// The public listeners audit the requests net/http refuses itself
	// (refusal.go): the handler wrapper and the two hooks tell a tracked
	// connection when a handler owns it.
	handler := trackHandler(closeAfterChunked(gw))

	parkMetrics := newParkMetrics(gw.metrics.Registry())
	base := func() *http.Server {
		hs := &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(gw.log.Handler(), slog.LevelWarn),
			ConnContext:       connContext,
			ConnState:         connState,
		}
		var p *parker
		if cfg.ParkIdleAfter > 0 || cfg.FastPathOn() {
			idle := cfg.IdleTimeout
			if idle <= 0 {
				idle = config.DefaultIdleTimeout // a parked connection never waits for ever
			}
			p = newParker(cfg.ParkIdleAfter, idle, parkMetrics)
			if cfg.FastPathOn() {
				// Plain GETs take sekisho's own connection loop (front.go);
				// the gateway itself is the handler (closeAfterChunked has
				// nothing to do for a request without a body).
				p.front = newFront(gw, hs)
			}
			hs.ConnState = func(c net.Conn, st http.ConnState) {
				connState(c, st)
				p.connState(st)
			}
		}
		s.parkers = append(s.parkers, p)
		return hs
	}
	if opts.TLSCert != nil || opts.GetCertificate != nil {
		tc := &tls.Config{
			MinVersion: tls.VersionTLS12,
			CipherSuites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,
				tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
			},
			NextProtos: []string{"h2", "http/1.1"},
			ClientAuth: tls.RequestClientCert,
		}
		if opts.ClientCAs != nil {
			tc.ClientCAs = opts.ClientCAs
		}
		if opts.GetCertificate != nil {
			tc.GetCertificate = opts.GetCertificate
		} else {
			tc.Certificates = []tls.Certificate{*opts.TLSCert}
		}
		hs := base()
		hs.Addr = cfg.Listen
		// TLS is terminated by Listen's tlsListener; TLSConfig stays set
		// so that Serve configures HTTP/2 for the *tls.Conn it hands over.
		hs.TLSConfig = tc
		s.tlsConf = tc
		s.servers = append(s.servers, hs)
		s.public = append(s.public, true)
	}
	if cfg.HTTPListen != "" {
		hs := base()
		hs.Addr = cfg.HTTPListen
		s.servers = append(s.servers, hs)
		s.public = append(s.public, true)
	}
	if cfg.MetricsListen != "" {
		ms := &http.Server{
			Addr:              cfg.MetricsListen,
			Handler:           gw.metrics.Handler(opts.Ready, cfg.Pprof),
			ReadHeaderTimeout: 5 * time.Second,
		}
		s.servers = append(s.servers, ms)
		s.public = append(s.public, false)
		s.parkers = append(s.parkers, nil)
	}
	if len(s.servers) == 0 {
		return nil, errors.New("no listener configured (server.listen with tls, or server.http_listen)")
	}
	return s, nil
}

// Listen opens every listener, so that errors (address in use) surface
// before serving starts. It returns the bound addresses in order: HTTPS,
// HTTP, metrics (those configured).
func (s *Server) Listen() ([]string, error) {
	var addrs []string
	for i, hs := range s.servers {
		ln, err := net.Listen("tcp", hs.Addr)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("listening on %s: %w", hs.Addr, err)
		}
		p := s.parkers[i]
		if p != nil {
			p.addr = ln.Addr()
		}
		switch {
		case hs.TLSConfig != nil:
			tl := newTLSListener(ln, hs.TLSConfig, hs.ReadHeaderTimeout, s.rec)
			tl.parker = p
			ln = tl
		case s.public[i]:
			ln = trackingListener{Listener: ln, rec: s.rec, parker: p}
		}
		if p != nil && p.front != nil {
			ln = frontListener{Listener: ln, p: p}
		}
		s.lns = append(s.lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// SetSessionTicketKeys sets the keys that encrypt and decrypt the HTTPS
// listener's TLS session tickets (tls.Config.SetSessionTicketKeys): the
// first encrypts new tickets, every one decrypts. Replicas given the same
// keys resume each other's sessions (package authn/ticketkeys). Until it
// is called, crypto/tls makes and rotates keys of its own. It does
// nothing without HTTPS or without keys, and may be called while serving.
func (s *Server) SetSessionTicketKeys(keys [][32]byte) {
	if len(keys) == 0 || s.tlsConf == nil {
		return
	}
	s.tlsConf.SetSessionTicketKeys(keys)
}

func (s *Server) closeListeners() {
	for _, ln := range s.lns {
		_ = ln.Close()
	}
	s.lns = nil
}

// Serve serves until ctx ends, then shuts down gracefully within the
// configured shutdown timeout. Listen must have been called.
func (s *Server) Serve(ctx context.Context) error {
	if len(s.lns) != len(s.servers) {
		return errors.New("Serve called before Listen")
	}
	errc := make(chan error, 2*len(s.servers))
	var wg sync.WaitGroup
	serve := func(hs *http.Server, ln net.Listener) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	for i, hs := range s.servers {
		serve(hs, s.lns[i])
		if p := s.parkers[i]; p != nil {
			// Woken parked connections come back through a second listener
			// of the same server.
			serve(hs, p)
		}
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	timeout := s.gw.cfg.Server.ShutdownTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for i, hs := range s.servers {
		if err := hs.Shutdown(sctx); err != nil {
			s.log.Warn("shutdown did not finish in time", "addr", hs.Addr, "err", err)
		}
		if p := s.parkers[i]; p != nil {
			_ = p.Close() // Shutdown closed it unless its Serve had not started yet
			if p.front != nil {
				p.front.wait(sctx) // requests on the fast path finish too
			}
		}
	}
	wg.Wait()
	for _, ln := range s.lns {
		if tl, ok := ln.(*tlsListener); ok {
			tl.wait() // handshakes in progress, aborted by Shutdown's Close
		}
	}
	return serveErr
}

// frontListener gives the HTTP/1 connections of a public listener to the
// parker, which serves them on the fast path (front.go) and hands them to
// net/http when a request needs it; only HTTP/2 connections reach
// net/http's server directly.
type frontListener struct {
	net.Listener
	p *parker
}

func (l frontListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if t := trackerOf(c); t != nil {
			l.p.adopt(t)
			continue
		}
		return c, nil
	}
}

// closeAfterChunked makes net/http close an HTTP/1 connection once it has
// answered a request whose body was chunked. net/http accepts
// Transfer-Encoding: chunked together with Content-Length (the chunked
// framing wins and Content-Length is dropped, so nothing is smuggled
// through sekisho itself), but it keeps the connection open, while RFC
// 9112 §6.1 says a server MUST close it after responding to such a
// message: a proxy in front may have framed the same bytes by
// Content-Length, and whatever it thinks follows must not be read as the
// next request. Once parsed, the two cases cannot be told apart, so every
// chunked HTTP/1 request closes its connection (browsers do not send
// chunked bodies over HTTP/1).
func closeAfterChunked(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 && slices.Contains(r.TransferEncoding, "chunked") {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}
