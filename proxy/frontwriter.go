package proxy

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// frontWriter is the http.ResponseWriter of a fast-path request (front.go).
// It frames the response as net/http's server does for a GET over
// HTTP/1.1; see the comment at the top of front.go. The status line and
// header go out at the first Write, Flush or when the handler returns
// when their framing or a sniffed Content-Type depends on the body;
// otherwise at WriteHeader.
type frontWriter struct {
	frontReq // reset for each request
	// The buffers, kept across requests (zeroing them per request cost
	// more than the rest of reset).
	holdBuf [bufferBeforeLength]byte
	scratch [64]byte
}

// frontReq is frontWriter's state for one request.
type frontReq struct {
	bw     *bufio.Writer
	out    *clientOut // what bw writes to, when it holds the final flush; may be nil
	header http.Header
	// sent is the header as it was at WriteHeader, when the status line
	// goes out later (net/http sends the header as it was then; what the
	// handler sets afterwards can only be a trailer); nil when it went out
	// at once.
	sent    http.Header
	closing func() bool
	logf    func(string, ...any)

	status  int   // final status; 0 until WriteHeader(≥ 200 or 101)
	emitted bool  // status line and header are in bw
	cl      int64 // Content-Length, -1 while unknown
	written int64
	chunked bool
	// hold keeps the body while its length is unknown and the header not
	// yet out, up to bufferBeforeLength (in holdBuf).
	hold       []byte
	closeAfter bool
	err        error // a write to the client failed
	// trailers are the names the handler declared in a Trailer header.
	trailers []string
}

// reset readies w for the next request on a connection. The header map
// of the previous request is cleared and kept: the handler's use of it
// ended with that request.
func (w *frontWriter) reset(bw *bufio.Writer, out *clientOut, closing func() bool, logf func(string, ...any)) {
	h := w.header
	if h == nil {
		h = make(http.Header)
	} else {
		clear(h)
	}
	w.frontReq = frontReq{bw: bw, out: out, header: h, closing: closing, logf: logf, cl: -1, hold: w.holdBuf[:0]}
}

func (w *frontWriter) Header() http.Header { return w.header }

// WriteHeader records the status; 1xx other than 101 are written at once.
func (w *frontWriter) WriteHeader(code int) {
	if w.status != 0 {
		w.logf("http: superfluous response.WriteHeader call (fast path)")
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.writeStatusLine(code)
		_ = w.header.WriteSubset(w.bw, excludeNoBody)
		_, _ = w.bw.WriteString("\r\n")
		w.noteErr(w.bw.Flush())
		return
	}
	w.status = code
	if code == http.StatusSwitchingProtocols {
		// No upgrade takes the fast path; nothing may follow on this
		// connection.
		w.closeAfter = true
	}
	h := w.header
	if v := h.Get("Content-Length"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil && n >= 0 && strings.TrimLeft(v, "0123456789") == "" {
			w.cl = n
		} else {
			w.logf("http: invalid Content-Length of %q", v)
			h.Del("Content-Length")
		}
	}
	_, haveType := h["Content-Type"]
	if !bodyAllowedForStatus(code) ||
		(w.cl >= 0 && (w.cl == 0 || haveType || h.Get("Content-Encoding") != "" || h.Get("Transfer-Encoding") != "")) {
		// Nothing to learn from the body (the usual proxied answer: its
		// length and type given): out now, as the header is.
		w.emit(nil)
		return
	}
	w.sent = h.Clone()
}

// Write writes body bytes, as net/http's response does.
func (w *frontWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	w.written += int64(len(p))
	if w.cl >= 0 && w.written > w.cl {
		return 0, http.ErrContentLength
	}
	if !w.emitted {
		if w.cl < 0 && len(w.hold)+len(p) <= bufferBeforeLength {
			w.hold = append(w.hold, p...)
			return len(p), nil
		}
		first := p
		if len(w.hold) > 0 {
			first = w.hold
		}
		w.emit(first)
		if len(w.hold) > 0 {
			w.body(w.hold)
			w.hold = w.hold[:0]
		}
	}
	w.body(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// WriteString avoids a copy for io.WriteString callers.
func (w *frontWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// body writes p in the response's framing.
func (w *frontWriter) body(p []byte) {
	if len(p) == 0 || w.err != nil {
		return
	}
	if w.chunked {
		b := strconv.AppendInt(w.scratch[:0], int64(len(p)), 16)
		b = append(b, '\r', '\n')
		_, _ = w.bw.Write(b)
		_, _ = w.bw.Write(p)
		_, err := w.bw.WriteString("\r\n")
		w.noteErr(err)
		return
	}
	_, err := w.bw.Write(p)
	w.noteErr(err)
}

func (w *frontWriter) noteErr(err error) {
	if err != nil && w.err == nil {
		w.err = err
		w.closeAfter = true
	}
}

// Flush sends what is buffered; a response of unknown length becomes
// chunked.
func (w *frontWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush reporting a failed write (http.ResponseController).
func (w *frontWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.emitted {
		w.emit(w.hold)
		w.body(w.hold)
		w.hold = w.hold[:0]
	}
	if w.err != nil {
		return w.err
	}
	w.noteErr(w.bw.Flush())
	return w.err
}

// finish completes the response once the handler has returned and
// reports whether the connection may carry another request.
func (w *frontWriter) finish() bool {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.emitted {
		if h := w.sent; w.cl < 0 && bodyAllowedForStatus(w.status) && !hasTrailers(h) && h.Get("Transfer-Encoding") == "" {
			w.cl = int64(len(w.hold))
			h["Content-Length"] = []string{strconv.Itoa(len(w.hold))}
		}
		w.emit(w.hold)
		w.body(w.hold)
		w.hold = w.hold[:0]
	}
	if w.chunked && w.err == nil {
		_, _ = w.bw.WriteString("0\r\n")
		w.writeTrailers()
		_, err := w.bw.WriteString("\r\n")
		w.noteErr(err)
	}
	if w.cl >= 0 && bodyAllowedForStatus(w.status) && w.written != w.cl {
		// A body shorter than announced: the client cannot find the
		// next response.
		w.closeAfter = true
	}
	if w.err == nil {
		// The final flush is held for serve, which writes it as it waits
		// for the next request (clientOut).
		if w.out != nil {
			w.out.hold = true
		}
		w.noteErr(w.bw.Flush())
		if w.out != nil {
			w.out.hold = false
		}
	}
	return !w.closeAfter && w.err == nil
}

// hasTrailers reports whether h announces trailers.
func hasTrailers(h http.Header) bool {
	if len(h["Trailer"]) > 0 {
		return true
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

var (
	excludeNoBody = map[string]bool{"Content-Length": true, "Transfer-Encoding": true}
	exclude304    = map[string]bool{"Content-Type": true, "Content-Length": true, "Transfer-Encoding": true}
)

// emit writes the status line and header. first is the start of the body
// if any is known (for sniffing a Content-Type).
func (w *frontWriter) emit(first []byte) {
	w.emitted = true
	h := w.sent
	if h == nil {
		h = w.header
	}
	code := w.status
	var exclude map[string]bool
	del := func(k string) {
		if _, ok := h[k]; !ok {
			return
		}
		if exclude == nil {
			exclude = map[string]bool{}
		}
		exclude[k] = true
	}
	for _, v := range h["Trailer"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				w.trailers = append(w.trailers, http.CanonicalHeaderKey(f))
			}
		}
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			del(k)
		}
	}
	te := h.Get("Transfer-Encoding")
	if hasToken(h["Connection"], "close") || w.closing() {
		w.closeAfter = true
	}
	var ctype string
	switch {
	case !bodyAllowedForStatus(code):
		if exclude == nil {
			if code == http.StatusNotModified {
				exclude = exclude304
			} else {
				exclude = excludeNoBody
			}
		} else {
			for k := range excludeNoBody {
				del(k)
			}
			if code == http.StatusNotModified {
				del("Content-Type")
			}
		}
	default:
		_, haveType := h["Content-Type"]
		if !haveType && te == "" && h.Get("Content-Encoding") == "" && len(first) > 0 {
			ctype = http.DetectContentType(first)
		}
		switch {
		case w.cl >= 0 && te != "" && te != "identity":
			// Both: the chunked framing wins, as in net/http.
			del("Content-Length")
			w.cl = -1
			w.chunked = true
			del("Transfer-Encoding")
		case w.cl >= 0:
			del("Transfer-Encoding")
		case te == "identity":
			del("Transfer-Encoding")
			w.closeAfter = true
		default:
			del("Transfer-Encoding")
			w.chunked = true
		}
	}
	if w.closeAfter && !hasToken(h["Connection"], "close") {
		del("Connection")
	}
	w.writeStatusLine(code)
	_ = h.WriteSubset(w.bw, exclude)
	if ctype != "" {
		_, _ = w.bw.WriteString("Content-Type: " + ctype + "\r\n")
	}
	if w.chunked {
		_, _ = w.bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if _, ok := h["Date"]; !ok {
		b := append(w.scratch[:0], "Date: "...)
		b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
		_, _ = w.bw.Write(append(b, '\r', '\n'))
	}
	if w.closeAfter && !hasToken(h["Connection"], "close") {
		_, _ = w.bw.WriteString("Connection: close\r\n")
	}
	_, err := w.bw.WriteString("\r\n")
	w.noteErr(err)
}

// writeStatusLine writes "HTTP/1.1 code text".
func (w *frontWriter) writeStatusLine(code int) {
	b := append(w.scratch[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		_, _ = w.bw.Write(b)
		_, _ = w.bw.WriteString(text)
		_, _ = w.bw.WriteString("\r\n")
		return
	}
	b = append(b, "status code "...)
	b = strconv.AppendInt(b, int64(code), 10)
	_, _ = w.bw.Write(append(b, '\r', '\n'))
}

// writeTrailers writes the declared trailers and the TrailerPrefix ones,
// as net/http does.
func (w *frontWriter) writeTrailers() {
	var tr http.Header
	for _, k := range w.trailers {
		if vv, ok := w.header[k]; ok {
			if tr == nil {
				tr = http.Header{}
			}
			tr[k] = vv
		}
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			if tr == nil {
				tr = http.Header{}
			}
			for _, v := range vv {
				tr.Add(name, v)
			}
		}
	}
	if tr != nil {
		_ = tr.Write(w.bw)
	}
}

// bodyAllowedForStatus is net/http's rule: no body for 1xx, 204, 304.
func bodyAllowedForStatus(code int) bool {
	switch {
	case code >= 100 && code <= 199, code == http.StatusNoContent, code == http.StatusNotModified:
		return false
	}
	return true
}
