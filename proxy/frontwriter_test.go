package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fwCase is a handler run once behind net/http's server and once through
// a frontWriter. note records what the handler saw (errors returned by
// Write), which must be the same too.
type fwCase struct {
	name string
	h    func(w http.ResponseWriter, r *http.Request, note func(string))
	// late: the handler changes its header after the response's header
	// is decided (WriteHeader, or the first Write); net/http sends the
	// header as it was then. TestFrontWriterLateHeader runs these.
	late bool
	// differs, when set, says why the two responses are meant to differ;
	// the frontWriter's framing is still checked.
	differs string
}

// writeNote writes s and notes the result.
func writeNote(w http.ResponseWriter, s string, note func(string)) {
	n, err := io.WriteString(w, s)
	note(fmt.Sprintf("write %d: %d %v", len(s), n, err))
}

func frontWriterCases() []fwCase {
	big := strings.Repeat("0123456789abcdef", 200) // 3,200 bytes
	return []fwCase{
		{name: "Content-Length and body", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Content-Length", "5")
			writeNote(w, "hello", note)
		}},
		{name: "Content-Length and a large body", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Content-Length", fmt.Sprint(3*len(big)))
			for range 3 {
				writeNote(w, big, note)
			}
		}},
		{name: "small body, no length", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			writeNote(w, "hello world", note)
		}},
		{name: "2048 bytes, no length", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			writeNote(w, big[:2048], note)
		}},
		{name: "2049 bytes, no length", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			writeNote(w, big[:2049], note)
		}},
		{name: "2048 then 1 byte, no length", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			writeNote(w, big[:2048], note)
			writeNote(w, "x", note)
		}},
		{name: "large body in pieces, no length", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			for i := 0; i < len(big); i += 700 {
				writeNote(w, big[i:min(i+700, len(big))], note)
			}
		}},
		{name: "flush then writes", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			writeNote(w, "part 1;", note)
			w.(http.Flusher).Flush()
			writeNote(w, "part 2", note)
		}},
		{name: "flush only", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.(http.Flusher).Flush()
		}},
		{name: "flush with Content-Length", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Content-Length", "4")
			writeNote(w, "ab", note)
			w.(http.Flusher).Flush()
			writeNote(w, "cd", note)
		}},
		{name: "declared trailers", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Trailer", "X-Sum, X-Other")
			writeNote(w, "body", note)
			w.Header().Set("X-Sum", "42")
			w.Header().Set("X-Undeclared", "no")
		}, late: true},
		{name: "declared trailers, flushed", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Trailer", "X-Sum")
			writeNote(w, "body", note)
			w.(http.Flusher).Flush()
			w.Header().Set("X-Sum", "42")
		}},
		{name: "TrailerPrefix trailers", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			writeNote(w, "body", note)
			w.Header().Set(http.TrailerPrefix+"X-Late", "1")
			w.Header().Add(http.TrailerPrefix+"X-Late", "2")
		}, late: true},
		{name: "TrailerPrefix trailers, no body", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set(http.TrailerPrefix+"X-Late", "1")
		}},
		{name: "204 with a body attempt", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusNoContent)
			writeNote(w, "x", note)
		}},
		{name: "204 with Content-Length", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Content-Length", "10")
			w.WriteHeader(http.StatusNoContent)
		}},
		{name: "304 with Content-Type and Content-Length", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", "10")
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		}},
		{name: "103 Early Hints then 200", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Add("Link", "</style.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("Content-Type", "text/plain")
			writeNote(w, "after hints", note)
		}},
		{name: "WriteHeader twice", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.WriteHeader(http.StatusCreated)
			w.WriteHeader(http.StatusInternalServerError)
			writeNote(w, "x", note)
		}},
		{name: "404 without body", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.WriteHeader(http.StatusNotFound)
		}},
		{name: "status without text", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.WriteHeader(599)
			writeNote(w, "x", note)
		}},
		{name: "nothing", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {}},
		{name: "Content-Length shorter than written", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Content-Length", "3")
			writeNote(w, "hello", note)
			writeNote(w, "x", note)
		}},
		{name: "Content-Length shorter, written in pieces", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Content-Length", "3")
			writeNote(w, "he", note)
			writeNote(w, "llo", note)
		}},
		{name: "Content-Length longer than written", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Content-Length", "10")
			writeNote(w, "hello", note)
		}},
		// (A Content-Length of "+5" is not compared: net/http takes it for
		// 5 and sends "+5", which its own client refuses; a frontWriter
		// drops it as invalid.)
		{name: "invalid Content-Length", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Content-Length", "five")
			writeNote(w, "hello", note)
		}, differs: "net/http keeps an invalid Content-Length in the header it sends and chunks the body; a frontWriter drops the value and frames the body by its length"},
		{name: "negative Content-Length", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Content-Length", "-1")
			writeNote(w, "hello", note)
		}, differs: "as for an invalid Content-Length"},
		{name: "sniffed Content-Type", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			writeNote(w, "<!DOCTYPE html><html><body>hi</body></html>", note)
		}},
		{name: "sniffed Content-Type, large body", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			writeNote(w, "<html>"+big, note)
		}},
		{name: "empty Content-Type kept", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header()["Content-Type"] = nil
			writeNote(w, "<html></html>", note)
		}},
		{name: "Content-Encoding without type", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Content-Encoding", "gzip")
			writeNote(w, "\x1f\x8b\x08\x00\x00\x00\x00\x00", note)
		}},
		{name: "CR LF in a header value", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header()["X-Evil"] = []string{"a\r\nSet-Cookie: stolen=1\r\n\r\n<html>"}
			writeNote(w, "ok", note)
		}},
		{name: "invalid header name", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header()["X Bad"] = []string{"1"}
			w.Header()["X-Bad\r\nSet-Cookie"] = []string{"1"}
			writeNote(w, "ok", note)
		}},
		{name: "Transfer-Encoding identity", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Transfer-Encoding", "identity")
			writeNote(w, "hello", note)
		}},
		{name: "Transfer-Encoding chunked set by the handler", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Transfer-Encoding", "chunked")
			writeNote(w, "hello", note)
		}},
		{name: "Connection close set by the handler", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Connection", "close")
			writeNote(w, "bye", note)
		}},
		{name: "Date set by the handler", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Date", "Mon, 02 Jan 2006 15:04:05 GMT")
			writeNote(w, "x", note)
		}},
		{name: "header changed after WriteHeader", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.WriteHeader(http.StatusOK)
			w.Header().Set("X-Late", "1")
			w.Header().Set("Content-Length", "1")
			writeNote(w, "late", note)
		}, late: true},
		{name: "Content-Length set after WriteHeader, large body", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.WriteHeader(http.StatusOK)
			w.Header().Set("Content-Length", "1")
			writeNote(w, big, note)
		}, late: true},
		{name: "chunked set after WriteHeader with a length", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.Header().Set("Content-Length", "5")
			w.WriteHeader(http.StatusOK)
			w.Header().Set("Transfer-Encoding", "chunked")
			writeNote(w, "hello", note)
		}, late: true},
		{name: "Connection close set after WriteHeader", h: func(w http.ResponseWriter, r *http.Request, note func(string)) {
			w.WriteHeader(http.StatusOK)
			w.Header().Set("Connection", "close")
			writeNote(w, "x", note)
		}, late: true},
	}
}

// fwOutcome is what a client reads of one response, less Date's value.
type fwOutcome struct {
	Interim       []string // 1xx responses: status and header
	Status        int
	Proto         string
	Header        http.Header
	HasDate       bool
	Body          string
	BodyErr       bool
	Trailer       http.Header
	ContentLength int64
	Chunked       []string
	Close         bool
	// KeepAlive: net/http answered a next request on the connection;
	// the frontWriter's finish() said the connection may go on.
	KeepAlive bool
	Notes     []string
}

// readFWResponse reads one response (after any 1xx) from br.
func readFWResponse(br *bufio.Reader, req *http.Request) (fwOutcome, error) {
	var out fwOutcome
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return out, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode <= 199 {
			out.Interim = append(out.Interim, fmt.Sprintf("%d %v", resp.StatusCode, resp.Header))
			continue
		}
		b, err := io.ReadAll(resp.Body)
		out.Status, out.Proto, out.Body, out.BodyErr = resp.StatusCode, resp.Proto, string(b), err != nil
		out.Header = resp.Header.Clone()
		out.HasDate = out.Header.Get("Date") != ""
		if out.Header.Get("Date") != "Mon, 02 Jan 2006 15:04:05 GMT" {
			out.Header.Del("Date")
		}
		out.Trailer, out.ContentLength, out.Chunked, out.Close = resp.Trailer, resp.ContentLength, resp.TransferEncoding, resp.Close
		return out, nil
	}
}

// TestFrontWriterDifferential: each handler's response, read by a client,
// is the same through a frontWriter as behind net/http's own server:
// status, header, body, trailers, framing, and whether the connection may
// carry the next request. No difference is intended.
func TestFrontWriterDifferential(t *testing.T) {
	var cases []fwCase
	for _, c := range frontWriterCases() {
		if !c.late {
			cases = append(cases, c)
		}
	}
	runFWDiff(t, cases)
}

// TestFrontWriterLateHeader: a handler that changes its header after
// WriteHeader (or after its first Write) does not change the response's
// header, as in net/http, which sends the header as it was when the
// status was written; trailers are the only values read after the body.
// (A frontWriter that read the live map when it emitted the header leaked
// late values into it, and sent a late Content-Length next to
// Transfer-Encoding: chunked.)
func TestFrontWriterLateHeader(t *testing.T) {
	var cases []fwCase
	for _, c := range frontWriterCases() {
		if c.late {
			cases = append(cases, c)
		}
	}
	runFWDiff(t, cases)
}

// runFWDiff runs each case behind net/http's server and through a
// frontWriter and compares what a client reads.
func runFWDiff(t *testing.T, cases []fwCase) {
	var mu sync.Mutex
	netNotes := map[string][]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/next" {
			io.WriteString(w, "next")
			return
		}
		for _, c := range cases {
			if r.URL.Path == "/"+strings.ReplaceAll(c.name, " ", "_") {
				c.h(w, r, func(s string) {
					mu.Lock()
					defer mu.Unlock()
					netNotes[c.name] = append(netNotes[c.name], s)
				})
				return
			}
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	srv.Config.ErrorLog = nil

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := "GET /" + strings.ReplaceAll(c.name, " ", "_") + " HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n"

			// Behind net/http's server.
			conn, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(conn, raw)
			br := bufio.NewReader(conn)
			want, err := readFWResponse(br, nil)
			if err != nil {
				t.Fatalf("net/http: %v", err)
			}
			if !want.BodyErr {
				if _, err := io.WriteString(conn, "GET /next HTTP/1.1\r\nHost: web.example.lg.jp\r\n\r\n"); err == nil {
					next, err := readFWResponse(br, nil)
					want.KeepAlive = err == nil && next.Body == "next"
				}
			}
			mu.Lock()
			want.Notes = netNotes[c.name]
			mu.Unlock()

			// Through a frontWriter.
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			var w frontWriter
			w.reset(bufio.NewWriterSize(&buf, frontWriteSize), nil, func() bool { return false }, t.Logf)
			var notes []string
			c.h(&w, req, func(s string) { notes = append(notes, s) })
			keep := w.finish()
			out := buf.Bytes()
			fbr := bufio.NewReader(bytes.NewReader(out))
			got, err := readFWResponse(fbr, nil)
			if err != nil {
				t.Fatalf("frontWriter: %v in %q", err, out)
			}
			got.KeepAlive = keep
			got.Notes = notes
			// http.ReadResponse drops a Content-Length sent with chunking;
			// a client or proxy that does not would read another body.
			if last := bytes.LastIndex(out, []byte("HTTP/1.1 ")); last >= 0 {
				head, _, _ := bytes.Cut(out[last:], []byte("\r\n\r\n"))
				lower := strings.ToLower(string(head))
				if strings.Contains(lower, "\r\ncontent-length:") && strings.Contains(lower, "\r\ntransfer-encoding:") {
					t.Errorf("frontWriter sent both Content-Length and Transfer-Encoding: %q", head)
				}
			}
			if keep {
				if rest, _ := io.ReadAll(fbr); len(rest) != 0 {
					t.Errorf("frontWriter: %q after the response on a kept connection", rest)
				}
			}
			switch d := cmp.Diff(want, got); {
			case d != "" && c.differs == "":
				t.Errorf("frontWriter differs from net/http (-net/http +frontWriter):\n%s\nraw: %q", d, out)
			case d != "":
				t.Logf("intended difference (%s):\n%s", c.differs, d)
			case c.differs != "":
				t.Errorf("no difference, but the case says %q", c.differs)
			}
		})
	}
}

// TestFrontWriterNoSplitting: whatever a handler puts in header values,
// a frontWriter's response holds exactly the header lines it was given
// names for, one line each.
func TestFrontWriterNoSplitting(t *testing.T) {
	var buf bytes.Buffer
	var w frontWriter
	w.reset(bufio.NewWriterSize(&buf, frontWriteSize), nil, func() bool { return false }, t.Logf)
	w.Header()["X-A"] = []string{"1\r\nSet-Cookie: a=1", "2\nSet-Cookie: b=1", "3\rSet-Cookie: c=1"}
	w.Header().Set("Content-Length", "2")
	io.WriteString(&w, "ok")
	w.finish()
	resp, err := http.ReadResponse(bufio.NewReader(&buf), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Errorf("response split: Set-Cookie %q", c)
	}
	if a := resp.Header.Values("X-A"); len(a) != 3 {
		t.Errorf("X-A %q, want 3 values", a)
	}
}
