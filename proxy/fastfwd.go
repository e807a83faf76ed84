package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http/httpguts"

	"github.com/sekisho/sekisho/internal/h1transport"
	"github.com/sekisho/sekisho/reqctx"
)

// fastForward forwards a fast-path request (front.go: a GET without a
// body, framing or upgrade) through h1transport.Exchange instead of
// httputil.ReverseProxy and net/http's request writer and response parser:
// the request head is written and the response head parsed by fasthttp
// without allocating per header line. It does what ReverseProxy does for
// such a request, in the same order, so that the upstream and the client
// see the same either way (TestFrontDifferential compares them):
//
//   - request: hop-by-hop headers and those named in Connection removed,
//     "Te: trailers" kept, the gateway's own header rules applied
//     (upstreamHeaders), no User-Agent added, the path joined to the
//     upstream's and escaped as url.URL.RequestURI escapes it;
//   - response: hop-by-hop headers removed, the upstream's
//     cleanResponseHeaders rules, declared trailers passed on, streamed
//     bodies (text/event-stream, or no length) flushed on every write; an
//     error before the response began answered as upstreamError answers
//     it, one after it began aborting the response (http.ErrAbortHandler)
//     so that the client sees a cut-off answer, never a complete-looking
//     one.
func (g *Gateway) fastForward(w http.ResponseWriter, r *http.Request, info *reqctx.Info, t target) {
	rc := t.route.cfg
	up := rc.Upstream
	fx := fastExchanges.Get().(*fastExchange)
	fx.prepare()
	defer fx.release()
	resp := &fx.resp

	// The request head, written as the upstream receives it, with what
	// ReverseProxy's path does to the header (removeHopByHop, then
	// upstreamHeaders: cleanRequestHeaders and the gateway's values) done
	// while it is written, instead of on the map first:
	// TestFastForwardUpstreamHeadDifferential holds the two to the same
	// fields. Fields named in Connection are still deleted from the map
	// first (rare); the fixed hop-by-hop fields, the client's X-Sekisho-*,
	// forwarding headers and X-Request-Id are skipped as they come.
	h := r.Header
	te := httpguts.HeaderValuesContainsToken(h["Te"], "trailers")
	if h["Connection"] != nil {
		removeHopByHop(h)
	}
	cookie := ""
	if g.authn != nil {
		cookie = g.authn.CookieName()
	}
	stripCookie(h, cookie)
	var set gatewayValues
	g.gatewayValues(info, &set)
	// As http.Transport on the net/http path: a value the gateway added
	// that is not a valid header value (an identity with CR or LF from the
	// store, say) is not sent at all; the client gets 502.
	for _, e := range set.kv[:set.n] {
		if slices.Contains(gatewayHeaders[:], e.k) && !httpguts.ValidHeaderFieldValue(e.v) {
			g.upstreamError(w, r, fmt.Errorf("invalid header field value for %q", e.k))
			return
		}
	}
	// Every value is known to hold no CR or LF: the client's head passed
	// headOK, the gateway's identity values the check above, and the rest
	// are the gateway's own (a checked host, an address, a request id, a
	// base64url assertion); headLine refuses one anyway rather than send
	// it.
	u := url.URL{Path: joinPath(up.Path, info.Path), RawQuery: r.URL.RawQuery}
	b := append(fx.head[:0], "GET "...)
	b = append(b, u.RequestURI()...)
	b = append(b, " HTTP/1.1\r\n"...)
	host := up.Host
	if rc.PreserveHost {
		host = r.Host
	}
	ok := true
	b, ok = headLine(b, "Host", host, ok)
	for k, vv := range h {
		switch k {
		case "Host", "X-Request-Id":
			continue
		case "User-Agent":
			// Request.Write sends the first value only, and none if empty.
			if vv[0] != "" {
				b, ok = headLine(b, k, vv[0], ok)
			}
			continue
		}
		if isHopHeader(k) || isSekishoHeader(k) || isForwardedHeader(k) {
			continue
		}
		for _, v := range vv {
			b, ok = headLine(b, k, v, ok)
		}
	}
	if te {
		b, ok = headLine(b, "Te", "trailers", ok)
	}
	for _, e := range set.kv[:set.n] {
		b, ok = headLine(b, e.k, e.v, ok)
	}
	fx.head = append(b, "\r\n"...)
	if !ok {
		g.upstreamError(w, r, errors.New("a header value with CR or LF"))
		return
	}

	s, err := t.route.h1.ExchangeGet(r.Context(), up.Scheme == "https", up.Host, fx.head, resp, &fx.stream)
	if err != nil {
		g.upstreamError(w, r, err)
		return
	}
	defer s.Close()

	// The response head: written straight from fasthttp's header when
	// frontWriter would write it at once, through http.Header otherwise.
	direct := false
	if rw, ok := w.(*recordingWriter); ok {
		if fw, ok := rw.ResponseWriter.(*frontWriter); ok && fw.status == 0 {
			direct = directHead(rw, fw, resp)
		}
	}
	if direct {
		g.fastBody(w, r, info, s, resp.Header.ContentLength(), nil, resp)
		return
	}
	// As ReverseProxy: the upstream's header is cleaned on its own (hop-by-hop
	// fields, those its Connection names, sekisho's cookies and request id),
	// then added to what the gateway has set (X-Request-Id, HSTS, a
	// refreshed session cookie), which the upstream cannot remove.
	uh := make(http.Header, 16)
	var declared []string
	for k, v := range resp.Header.All() {
		key := string(k)
		if key == "Content-Length" {
			continue // set below from the parsed length
		}
		if key == "Trailer" {
			for _, n := range strings.Split(string(v), ",") {
				if n = textproto.TrimString(n); n != "" {
					declared = append(declared, http.CanonicalHeaderKey(n))
				}
			}
			continue
		}
		uh[key] = append(uh[key], string(v))
	}
	removeHopByHop(uh)
	cleanResponseHeaders(uh)
	h = w.Header()
	for k, vv := range uh {
		h[k] = append(h[k], vv...)
	}
	cl := resp.Header.ContentLength()
	if cl >= 0 {
		h["Content-Length"] = []string{string(resp.Header.Peek("Content-Length"))}
	}
	if len(declared) > 0 {
		h["Trailer"] = []string{strings.Join(declared, ", ")}
	}
	w.WriteHeader(resp.StatusCode())
	g.fastBody(w, r, info, s, cl, declared, resp)
}

// fastBody copies the response body, flushing streamed ones (no length,
// or text/event-stream) after every read, and passes declared trailers on.
// A failed read or write aborts the response (http.ErrAbortHandler), as
// httputil.ReverseProxy does under a server.
func (g *Gateway) fastBody(w http.ResponseWriter, r *http.Request, info *reqctx.Info, s *h1transport.Stream, cl int, declared []string, resp *fasthttp.Response) {
	flush := cl < 0 || isEventStream(string(resp.Header.ContentType()))
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	for {
		n, rerr := s.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				panic(http.ErrAbortHandler)
			}
			if flush {
				w.(http.Flusher).Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if r.Context().Err() == nil {
				g.log.Warn("upstream body cut off", "request_id", info.RequestID, "route", info.Route, "err", rerr)
			}
			panic(http.ErrAbortHandler)
		}
	}
	if len(declared) > 0 {
		h := w.Header()
		w.(http.Flusher).Flush() // force chunking, as ReverseProxy does
		for _, n := range declared {
			if v := resp.Header.Peek(n); v != nil {
				h[n] = []string{string(v)}
			}
		}
	}
}

// directHead writes the response head to the client for the usual
// proxied answer — a length and a type given, or no body allowed — which
// frontWriter would write at once (WriteHeader, then emit), and writes it
// as frontWriter would: the status line, the header the gateway set
// (X-Request-Id, HSTS), the upstream's header less the hop-by-hop fields,
// sekisho's cookies and request id (cleanResponseHeaders), the length,
// Date when the upstream gave none, and Connection: close when the server
// is shutting down. It reports false, having written nothing, for any
// other answer (no length, a length without a type, trailers, a
// Connection header naming fields, a CR or LF in a value), which takes
// the http.Header path. Only the order of the header lines differs from
// frontWriter's (it sorts them).
func directHead(rw *recordingWriter, fw *frontWriter, resp *fasthttp.Response) bool {
	type kv struct{ k, v []byte }
	var pairs [48]kv
	n := 0
	haveType, haveEnc, haveDate := false, false, false
	for k, v := range resp.Header.All() {
		switch string(k) {
		case "Connection":
			if len(v) != 0 && !strings.EqualFold(string(v), "keep-alive") && !strings.EqualFold(string(v), "close") {
				return false
			}
			continue
		case "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te",
			"Transfer-Encoding", "Upgrade", "Content-Length", "X-Request-Id":
			continue
		case "Trailer":
			return false
		case "Set-Cookie":
			if sekishoCookie(string(v)) {
				continue
			}
		case "Content-Type":
			haveType = true
		case "Content-Encoding":
			haveEnc = true
		case "Date":
			haveDate = true
		}
		if n == len(pairs) || bytes.IndexByte(v, '\r') >= 0 || bytes.IndexByte(v, '\n') >= 0 {
			return false
		}
		pairs[n] = kv{k, v}
		n++
	}
	code := resp.StatusCode()
	cl := resp.Header.ContentLength()
	body := bodyAllowedForStatus(code)
	if code < 200 || body && !(cl >= 0 && (cl == 0 || haveType || haveEnc)) {
		return false
	}
	for k, vv := range fw.header {
		for _, v := range vv {
			if strings.ContainsAny(v, "\r\n") || strings.ContainsAny(k, "\r\n:") {
				return false
			}
		}
	}
	bw := fw.bw
	fw.writeStatusLine(code)
	line := func(k, v string) {
		_, _ = bw.WriteString(k)
		_, _ = bw.WriteString(": ")
		_, _ = bw.WriteString(v)
		_, _ = bw.WriteString("\r\n")
	}
	for k, vv := range fw.header {
		for _, v := range vv {
			line(k, v)
		}
	}
	for _, p := range pairs[:n] {
		if !body && code == http.StatusNotModified && string(p.k) == "Content-Type" {
			continue
		}
		_, _ = bw.Write(p.k)
		_, _ = bw.WriteString(": ")
		_, _ = bw.Write(p.v)
		_, _ = bw.WriteString("\r\n")
	}
	if body {
		b := append(fw.scratch[:0], "Content-Length: "...)
		b = strconv.AppendInt(b, int64(cl), 10)
		_, _ = bw.Write(append(b, '\r', '\n'))
	}
	if !haveDate {
		b := append(fw.scratch[:0], "Date: "...)
		b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
		_, _ = bw.Write(append(b, '\r', '\n'))
	}
	if fw.closing() {
		fw.closeAfter = true
		_, _ = bw.WriteString("Connection: close\r\n")
	}
	_, err := bw.WriteString("\r\n")
	fw.noteErr(err)
	fw.status, fw.emitted, fw.cl = code, true, int64(cl)
	rw.code = code
	return true
}

var teTrailers = []string{"trailers"}

// gatewayHeaders are the values upstreamHeaders takes from the store and
// the configuration. The client's own values were checked when its head
// was parsed; X-Forwarded-* are the checked Host and a parsed address, and
// X-Sekisho-Assertion is sekisho's own signature in base64url.
var gatewayHeaders = [...]string{"X-Sekisho-User", "X-Sekisho-Roles", "X-Sekisho-Device", "X-Sekisho-Class"}

// hopHeaders are removed in both directions, as httputil.ReverseProxy
// removes them (RFC 9110, section 7.6.1).
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// isHopHeader reports whether k, canonical, is one of hopHeaders.
func isHopHeader(k string) bool {
	for _, h := range hopHeaders {
		if k == h {
			return true
		}
	}
	return false
}

// removeHopByHop removes the headers named in Connection, then hopHeaders.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

func isEventStream(ct string) bool {
	// The media type before any parameter, as mime.ParseMediaType reads
	// it, without its allocations (it only decides when to flush).
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}

// fastExchange is what one forwarded request needs, pooled.
type fastExchange struct {
	head   []byte // the upstream request's head
	resp   fasthttp.Response
	stream h1transport.Stream // the response body (closed before release)
}

var fastExchanges = sync.Pool{New: func() any { return &fastExchange{} }}

func (fx *fastExchange) release() {
	if cap(fx.head) > 16<<10 {
		fx.head = nil // a rare large head is not kept in the pool
	}
	fx.resp.Reset()
	fx.stream = h1transport.Stream{}
	fastExchanges.Put(fx)
}

// prepare prepares the pooled response head: no Content-Type invented for
// a response without one.
func (fx *fastExchange) prepare() {
	fx.resp.Header.SetNoDefaultContentType(true)
}

// headLine appends the header line "k: v" to b. ok goes false, and stays
// false, for a name or value holding CR or LF.
func headLine(b []byte, k, v string, ok bool) ([]byte, bool) {
	if strings.IndexByte(v, '\n') >= 0 || strings.IndexByte(v, '\r') >= 0 ||
		strings.IndexByte(k, '\n') >= 0 || strings.IndexByte(k, '\r') >= 0 {
		return b, false
	}
	b = append(b, k...)
	b = append(b, ": "...)
	b = append(b, v...)
	return append(b, "\r\n"...), ok
}
