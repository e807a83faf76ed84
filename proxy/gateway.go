package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/config"
	"github.com/sekisho/sekisho/internal/h1transport"
	"github.com/sekisho/sekisho/reqctx"
)

// ErrNoSession is returned by an [Authenticator] when a request carries no
// session at all (as opposed to a refused one).
var ErrNoSession = errors.New("no session")

// Gateway is the enforcement point: it routes, identifies, decides, records
// and forwards every request. Build it with [New]; it is an http.Handler.
type Gateway struct {
	cfg     *config.Config
	log     *slog.Logger
	now     func() time.Time
	authn   Authenticator
	devices DeviceVerifier
	policy  Decider
	audit   Recorder
	admin   http.Handler
	metrics *Metrics

	state atomic.Pointer[state]
}

// state is everything derived from configuration, swapped whole on reload.
type state struct {
	cfg    *config.Config
	router *router
}

// routeState is one route with its forwarder.
type routeState struct {
	cfg   *config.Route
	paths []pathEntry
	proxy *httputil.ReverseProxy
	h1    *h1transport.Transport
}

// Option configures a Gateway.
type Option func(*Gateway)

// WithLogger sets the structured logger. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(g *Gateway) { g.log = l } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(g *Gateway) { g.now = now } }

// WithAuthenticator sets who identifies people. Without one, only public
// routes are served and every other request is refused.
func WithAuthenticator(a Authenticator) Option { return func(g *Gateway) { g.authn = a } }

// WithDeviceVerifier sets client-certificate verification. Without one,
// presented certificates are ignored.
func WithDeviceVerifier(d DeviceVerifier) Option { return func(g *Gateway) { g.devices = d } }

// WithDecider sets the policy. Without one, every non-public request is
// denied (default deny).
func WithDecider(d Decider) Option { return func(g *Gateway) { g.policy = d } }

// WithRecorder sets the audit trail. Without one, requests of classes that
// require a durable record fail closed with 503.
func WithRecorder(r Recorder) Option { return func(g *Gateway) { g.audit = r } }

// WithAdmin mounts the admin console under /.sekisho/admin/. The console
// is reached only after the gateway has authenticated and decided the
// request against the route's policy like any other.
func WithAdmin(h http.Handler) Option { return func(g *Gateway) { g.admin = h } }

// WithMetrics sets the metrics the gateway updates. Default: a new set on
// a private registry.
func WithMetrics(m *Metrics) Option { return func(g *Gateway) { g.metrics = m } }

// New builds a gateway for cfg.
func New(cfg *config.Config, opts ...Option) (*Gateway, error) {
	g := &Gateway{cfg: cfg, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(g)
	}
	if g.metrics == nil {
		g.metrics = NewMetrics(nil)
	}
	st, err := g.build(cfg)
	if err != nil {
		return nil, err
	}
	g.state.Store(st)
	return g, nil
}

// Reload swaps in a new configuration's routes. A bad configuration
// returns an error and keeps the old state.
func (g *Gateway) Reload(cfg *config.Config) error {
	st, err := g.build(cfg)
	if err != nil {
		return err
	}
	old := g.state.Swap(st)
	// The old routes' idle upstream connections are closed now rather
	// than after their idle timeout; requests in flight keep theirs.
	if old != nil {
		for _, rt := range old.router.hosts {
			if ci, ok := rt.proxy.Transport.(interface{ CloseIdleConnections() }); ok {
				ci.CloseIdleConnections()
			}
		}
	}
	return nil
}

func (g *Gateway) build(cfg *config.Config) (*state, error) {
	routes := make([]*routeState, 0, len(cfg.Routes))
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		rp, rt, err := g.newForwarder(rc)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", rc.Name, err)
		}
		routes = append(routes, &routeState{cfg: rc, paths: sortedPaths(rc), proxy: rp, h1: rt})
	}
	return &state{cfg: cfg, router: newRouter(routes)}, nil
}

// newRequestID makes a short random id: 16 characters of base32 (RFC 4648
// lower case, no padding) from 80 random bits. Request ids name requests
// in logs, pages and the audit trail; they grant nothing, so a fast
// non-cryptographic source (ChaCha8, per-thread in math/rand/v2) is
// enough. The characters are taken 5 bits at a time straight from two
// random words, without encoding/base32's general encoder and the byte
// array it needs (TestRequestIDBits checks every position takes all 32).
func newRequestID() string {
	x, y := rand.Uint64(), rand.Uint64()
	var out [16]byte
	for i := range 12 { // 60 bits of x
		out[i] = idAlphabet[x&31]
		x >>= 5
	}
	x |= y << 4 // x's last 4 bits and 16 of y
	for i := 12; i < 16; i++ {
		out[i] = idAlphabet[x&31]
		x >>= 5
	}
	return string(out[:])
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// reserved reports whether path is answered by sekisho itself.
func reserved(path string) bool {
	return path == "/.sekisho" || strings.HasPrefix(path, "/.sekisho/") ||
		strings.HasPrefix(path, "/.well-known/sekisho/")
}

// perRequest is what the gateway allocates for every request, in one
// allocation: the request's context with its Info, the response writer
// that records status and size, the values of sekisho's own response
// headers, and the access record.
type perRequest struct {
	ctx  reqctx.Context
	req  http.Request // the request with ctx (WithContext's copy, held here)
	rw   recordingWriter
	hdrs [2]string
	// entry is the access record of a forwarded request.
	entry Entry
}

// ServeHTTP runs the request flow of DESIGN.md §2.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := g.state.Load()
	pr := &perRequest{}
	pr.ctx.Context = r.Context()
	info := &pr.ctx.Info
	info.RequestID, info.Received, info.Method, info.TLS = newRequestID(), g.now(), r.Method, r.TLS != nil
	pr.rw.ResponseWriter = w
	rw := &pr.rw
	var ctx context.Context = &pr.ctx
	pr.req = *r.WithContext(ctx)
	r = &pr.req
	w = rw
	// Set with canonical keys and capped slices of pr.hdrs: the same as
	// Header.Set, without an allocation per value.
	h := w.Header()
	pr.hdrs[0] = info.RequestID
	h["X-Request-Id"] = pr.hdrs[0:1:1]
	// HSTS on every answer over TLS, except on localhost names, where the
	// demo serves plain HTTP on purpose (a secure context for WebAuthn) and
	// HSTS would send browsers to an HTTPS port that serves something else.
	if r.TLS != nil && !isLocalhost(r.Host) {
		pr.hdrs[1] = "max-age=31536000"
		h["Strict-Transport-Security"] = pr.hdrs[1:2:2]
	}
	defer func() {
		end := pr.entry.Time // the access record's time, when there is one
		if end.IsZero() {
			end = g.now()
		}
		g.metrics.observe(info, rw, end)
	}()

	// Source address and zone.
	remote := peerAddr(r.RemoteAddr)
	ip := clientIP(remote, r.Header["X-Forwarded-For"], st.cfg.Server.TrustedProxies)
	info.SetIP(ip, addrText(ip, r.RemoteAddr))
	info.Zone = st.cfg.ZoneOf(info.IP)

	// Device certificate, if presented. A bad certificate is not an error
	// here: the route or the policy decides whether a device is needed.
	var certErr error
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && g.devices != nil {
		dev, fp, user, err := g.devices.Verify(r.TLS.PeerCertificates)
		if err != nil {
			certErr = err
			info.CertError = g.devices.Code(err)
		} else {
			info.Device, info.CertFP, info.CertUser = dev, fp, user
		}
	}

	// Host and path: one normalised path for matching and forwarding.
	var err error
	info.Host, err = hostOnly(r.Host)
	rawPath := ""
	if err == nil {
		rawPath, err = requestPath(r.RequestURI)
	}
	if err == nil {
		info.Path, err = NormalizePath(rawPath)
	}
	info.RawQuery = r.URL.RawQuery
	if err != nil {
		info.Path = truncate(rawPath, 512)
		g.refuse(w, r, info, http.StatusBadRequest, "bad_request", err)
		return
	}

	t, ok := st.router.lookup(info.Host, info.Path)
	if !ok {
		g.refuse(w, r, info, http.StatusNotFound, "unknown_host", nil)
		return
	}
	info.Route, info.Class, info.Segment = t.route.cfg.Name, t.class, t.route.cfg.Segment
	info.Action, info.Mode = actionOf(r.Method, t.action), t.mode

	if reserved(info.Path) {
		g.serveReserved(w, r, info)
		return
	}

	if !t.route.cfg.Public {
		if g.authn == nil {
			g.refuse(w, r, info, http.StatusServiceUnavailable, "no_authenticator", errors.New("no authenticator configured"))
			return
		}
		if err := g.authn.Authenticate(w, r, info); err != nil {
			g.record(ctx, &Entry{Info: info, Event: "access", Decision: "deny", Enforced: true,
				Rule: "authn", Reasons: []string{authnReason(err)}, Status: http.StatusUnauthorized}, false)
			g.metrics.decision("login")
			g.authn.RequireLogin(w, r)
			return
		}
	}

	if t.route.cfg.ClientCert == "required" && info.Device == "" {
		g.deny(w, r, info, Verdict{
			Effect: "deny", Rule: "route:" + t.route.cfg.Name, Enforced: true,
			Reasons:    []string{certReason(info)},
			MessagesJA: []string{g.certMessage(certErr, true)}, MessagesEN: []string{g.certMessage(certErr, false)},
		})
		return
	}

	v := g.decide(ctx, info, t)
	g.metrics.decision(v.Effect)
	if v.Effect != "allow" && v.Enforced {
		if v.Effect == "stepup" && g.authn != nil {
			g.record(ctx, &Entry{Info: info, Event: "access", Decision: "stepup", Enforced: true,
				Rule: v.Rule, Reasons: v.Reasons, Status: http.StatusSeeOther}, false)
			g.authn.RequireStepUp(w, r, v.Reasons)
			return
		}
		g.deny(w, r, info, v)
		return
	}

	// A WebSocket handshake must come from a page of the same host: another
	// route's page (same site) must not open this route's socket as the user.
	if isWebSocket(r) && !sameOriginHost(r.Header.Get("Origin"), info.Host) {
		g.deny(w, r, info, Verdict{Effect: "deny", Rule: "gateway:websocket-origin", Enforced: true,
			Reasons:    []string{"websocket_origin"},
			MessagesJA: []string{"このページからの接続は許可されていません。"},
			MessagesEN: []string{"Connections from this page are not allowed."}})
		return
	}

	// The decision record goes first, durably, for classes that need it;
	// an unwritable trail fails closed.
	if v.AuditSync {
		if err := g.recordErr(ctx, &Entry{Info: info, Event: "access", Decision: v.Effect, Enforced: v.Enforced,
			Rule: v.Rule, Reasons: v.Reasons}, true); err != nil {
			g.metrics.auditFailures.Inc()
			g.log.Error("audit not durable; refusing request", "request_id", info.RequestID, "route", info.Route, "err", err)
			g.errorPage(w, r, info, http.StatusServiceUnavailable, msgAuditDown)
			return
		}
	}

	defer func() {
		// A response cut off midway (the upstream dropped it) ends in
		// httputil.ReverseProxy's http.ErrAbortHandler panic, which makes
		// the server close the connection; it is recorded, with what was
		// sent, before the panic goes on.
		if p := recover(); p != nil {
			g.record(ctx, &Entry{Info: info, Event: "access", Decision: v.Effect, Enforced: v.Enforced,
				Rule: v.Rule, Reasons: append(slices.Clip(v.Reasons), ReasonResponseAborted), Status: rw.status(),
				Bytes: rw.bytes, Duration: g.now().Sub(info.Received)}, false)
			panic(p)
		}
	}()
	g.forward(w, r, info, t)
	// One clock reading for the record's time, its duration and the
	// latency metric.
	end := g.now()
	pr.entry = Entry{Info: info, Time: end, Event: "access", Decision: v.Effect, Enforced: v.Enforced,
		Rule: v.Rule, Reasons: v.Reasons, Status: rw.status(), Bytes: rw.bytes,
		Duration: end.Sub(info.Received)}
	g.record(ctx, &pr.entry, false)
}

// ReasonResponseAborted marks the record of a response that was cut off
// after it had begun (the upstream dropped it): the client got a partial
// answer and its connection was closed.
const ReasonResponseAborted = "response_aborted"

// decide asks the policy; public routes are allowed without it, and with
// no policy everything else is denied.
func (g *Gateway) decide(ctx context.Context, info *reqctx.Info, t target) Verdict {
	if t.route.cfg.Public {
		return Verdict{Effect: "allow", Rule: "route:" + t.route.cfg.Name + ":public", Enforced: true}
	}
	if g.policy == nil {
		return Verdict{Effect: "deny", Rule: "default-deny", Reasons: []string{"no_policy"}, Enforced: true,
			MessagesJA: []string{"この操作は許可されていません。"}, MessagesEN: []string{"This action is not allowed."}}
	}
	// The request's time (read when it arrived, microseconds ago) is the
	// decision's: one clock reading less per request.
	return g.policy.Decide(ctx, info, info.Received)
}

// serveReserved answers /.sekisho/ and /.well-known/sekisho/ on a routed
// host. They are never forwarded.
func (g *Gateway) serveReserved(w http.ResponseWriter, r *http.Request, info *reqctx.Info) {
	if strings.HasPrefix(info.Path, "/.sekisho/admin/") || info.Path == "/.sekisho/admin" {
		g.serveAdmin(w, r, info)
		return
	}
	if g.authn == nil {
		g.refuse(w, r, info, http.StatusNotFound, "not_found", nil)
		return
	}
	// The handler sees the normalised path only.
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = info.Path, ""
	g.authn.Handler().ServeHTTP(w, r2)
	g.recordReserved(r, info, w)
}

// recordReserved writes an authn record for a request sekisho answered
// itself (login and enrollment pages, ceremonies, logout), so that refused
// return URLs and probing of these endpoints are in the trail. Static
// files and the JWKS, fetched by browsers and upstream apps all day, are
// not recorded. Only the rd and stepup query values are kept: enrollment
// tokens never reach the trail.
func (g *Gateway) recordReserved(r *http.Request, info *reqctx.Info, w http.ResponseWriter) {
	if strings.HasPrefix(info.Path, "/.sekisho/static/") || strings.HasPrefix(info.Path, "/.well-known/sekisho/") {
		return
	}
	rw, ok := w.(*recordingWriter)
	if !ok {
		return
	}
	q := url.Values{}
	for _, k := range []string{"rd", "stepup"} {
		if v, ok := r.URL.Query()[k]; ok {
			q[k] = v
		}
	}
	info.RawQuery = q.Encode()
	status := rw.status()
	decision := "allow"
	switch {
	case status >= 500:
		decision = "error"
	case status >= 400:
		decision = "deny"
	}
	g.record(r.Context(), &Entry{Info: info, Event: "authn", Decision: decision, Enforced: true,
		Rule: "reserved", Status: status, Bytes: rw.bytes, Duration: g.now().Sub(info.Received)}, false)
}

// serveAdmin puts the console behind the same identify-and-decide steps as
// any route, with the admin action and the admin class.
func (g *Gateway) serveAdmin(w http.ResponseWriter, r *http.Request, info *reqctx.Info) {
	if g.admin == nil || g.authn == nil {
		g.refuse(w, r, info, http.StatusNotFound, "not_found", nil)
		return
	}
	info.Route, info.Action, info.Mode = "admin", "admin", "enforce"
	info.Class = "3A"
	if err := g.authn.Authenticate(w, r, info); err != nil {
		g.record(r.Context(), &Entry{Info: info, Event: "admin", Decision: "deny", Enforced: true,
			Rule: "authn", Reasons: []string{authnReason(err)}, Status: http.StatusUnauthorized}, false)
		g.authn.RequireLogin(w, r)
		return
	}
	v := Verdict{Effect: "deny", Rule: "default-deny", Reasons: []string{"no_policy"}, Enforced: true}
	if g.policy != nil {
		v = g.policy.Decide(r.Context(), info, g.now())
		v.Enforced = true // the console is never in shadow mode
	}
	g.record(r.Context(), &Entry{Info: info, Event: "admin", Decision: v.Effect, Enforced: true, Rule: v.Rule, Reasons: v.Reasons}, v.AuditSync)
	switch v.Effect {
	case "allow":
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = info.Path, ""
		g.admin.ServeHTTP(w, r2)
	case "stepup":
		g.authn.RequireStepUp(w, r, v.Reasons)
	default:
		g.errorPage(w, r, info, http.StatusForbidden, pageMessage{ja: v.MessagesJA, en: v.MessagesEN})
	}
}

// deny answers 403 with the safe words of the verdict and records it.
func (g *Gateway) deny(w http.ResponseWriter, r *http.Request, info *reqctx.Info, v Verdict) {
	g.record(r.Context(), &Entry{Info: info, Event: "access", Decision: "deny", Enforced: true,
		Rule: v.Rule, Reasons: v.Reasons, Status: http.StatusForbidden}, false)
	g.errorPage(w, r, info, http.StatusForbidden, pageMessage{ja: v.MessagesJA, en: v.MessagesEN})
}

// refuse answers a request that never reached a decision (malformed,
// unknown host) and records it as an error.
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, info *reqctx.Info, status int, reason string, err error) {
	if err != nil {
		g.log.Info("request refused", "request_id", info.RequestID, "reason", reason, "err", err, "ip", info.IP)
	}
	g.record(r.Context(), &Entry{Info: info, Event: "access", Decision: "error", Enforced: true,
		Rule: "gateway", Reasons: []string{reason}, Status: status}, false)
	g.errorPage(w, r, info, status, messageFor(status))
}

func (g *Gateway) record(ctx context.Context, e *Entry, durable bool) {
	if err := g.recordErr(ctx, e, durable); err != nil {
		g.metrics.auditFailures.Inc()
		g.log.Error("audit record failed", "request_id", e.Info.RequestID, "err", err)
	}
}

func (g *Gateway) recordErr(ctx context.Context, e *Entry, durable bool) error {
	if g.audit == nil {
		if durable {
			return errors.New("no audit trail configured")
		}
		return nil
	}
	if e.Time.IsZero() {
		e.Time = g.now()
	}
	return g.audit.Record(ctx, e, durable)
}

func (g *Gateway) certMessage(certErr error, ja bool) string {
	if certErr != nil {
		msgJA, msgEN := g.devices.Reason(certErr)
		if ja {
			return msgJA
		}
		return msgEN
	}
	if ja {
		return "このシステムには登録された端末(端末証明書)から接続してください。"
	}
	return "Please connect from a registered device with its device certificate."
}

func authnReason(err error) string {
	var re *ReasonError
	switch {
	case errors.Is(err, ErrNoSession):
		return "not_authenticated"
	case errors.As(err, &re):
		return re.Reason
	}
	return "session_refused"
}

// certReason is the audit reason for a route that needs a device
// certificate the request lacks: the verifier's code when a certificate was
// presented and refused (device_revoked, device_cert_expired…).
func certReason(info *reqctx.Info) string {
	if info.CertError != "" {
		return info.CertError
	}
	return "device_cert_required"
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// addrText is ip.String(): the address part of remote (the connection's
// "host:port") when that is how ip prints, so that the usual request
// formats no address.
func addrText(ip netip.Addr, remote string) string {
	var buf [64]byte
	b := ip.AppendTo(buf[:0])
	if i := strings.LastIndexByte(remote, ':'); i > 0 {
		host := remote[:i]
		if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
			host = host[1 : len(host)-1]
		}
		if host == string(b) {
			return host
		}
	}
	return string(b)
}

// hostOnly lower-cases the host and drops a port, which must be numeric.
func hostOnly(h string) (string, error) {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		port := h[i+1:]
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return "", errBadHost
		}
		h = h[:i]
	}
	return strings.ToLower(strings.TrimSuffix(h, ".")), nil
}

var errBadHost = errors.New("host header has a malformed port")

// requestPath extracts the escaped path from a request target, in origin
// form ("/a?b") or absolute form ("http://h/a?b"). A "#" is refused: it
// cannot appear in a valid request target.
func requestPath(uri string) (string, error) {
	if uri == "*" {
		return "", ErrPathNotAbsolute
	}
	if strings.ContainsRune(uri, '#') {
		return "", errFragment
	}
	if !strings.HasPrefix(uri, "/") {
		i := strings.Index(uri, "://")
		if i < 0 {
			return "", ErrPathNotAbsolute
		}
		rest := uri[i+3:]
		j := strings.IndexAny(rest, "/?")
		if j < 0 {
			return "/", nil
		}
		uri = rest[j:]
		if uri[0] == '?' {
			return "/", nil
		}
	}
	if strings.ContainsRune(uri, '#') {
		return "", errFragment
	}
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	return uri, nil
}

var errFragment = errors.New("request target contains a fragment")

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(strings.TrimSpace(firstValue(r.Header, "Upgrade")), "websocket")
}

// firstValue is h.Get(key) for a key already in canonical form, without
// canonicalising it again on every request (the servers put every parsed
// field under its canonical name).
func firstValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// sameOriginHost reports whether an Origin header names host (any scheme
// and port). A missing Origin (non-browser clients) is allowed: browsers
// always send it on WebSocket handshakes.
func sameOriginHost(origin, host string) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Hostname(), host)
}

func isLocalhost(hostport string) bool {
	h, _ := hostOnly(hostport)
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}
