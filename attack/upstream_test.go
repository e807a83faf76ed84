package attack

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/internal/apptest"
)

// junkServer accepts connections and answers each with reply, then closes.
type junkServer struct {
	ln    net.Listener
	reply string
	wg    sync.WaitGroup
}

func newJunkServer(t *testing.T, reply string) *junkServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &junkServer{ln: ln, reply: reply}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 4096)
				c.Read(buf) // the request head, roughly
				io.WriteString(c, s.reply)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

// TestUpstreamFaults: an upstream that is down, slow, or answers garbage
// gets a clean 502/504 page that names the request id, an audit record with
// that status, and leaks nothing of the upstream's error to the client.
func TestUpstreamFaults(t *testing.T) {
	// A port with nothing listening.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	downURL := "http://" + l.Addr().String()
	l.Close()

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)

	garbage := newJunkServer(t, "HELLO\x00\xff\xfe not http at all\r\n\r\n")
	badStatus := newJunkServer(t, "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n")
	splitHeader := newJunkServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\nok")
	closed := newJunkServer(t, "")

	routes := ""
	for _, r := range []struct{ name, url, timeout string }{
		{"down", downURL, ""}, {"slow", slow.URL, "timeout: 500ms"},
		{"garbage", "http://" + garbage.ln.Addr().String(), ""},
		{"badstatus", "http://" + badStatus.ln.Addr().String(), ""},
		{"splitheader", "http://" + splitHeader.ln.Addr().String(), ""},
		{"closed", "http://" + closed.ln.Addr().String(), ""},
	} {
		routes += fmt.Sprintf("  - {name: %s, host: %s.gw.example.lg.jp, upstream: %q, segment: lgwan, class: \"2\"", r.name, r.name, r.url)
		if r.timeout != "" {
			routes += ", " + r.timeout
		}
		routes += "}\n"
	}
	w := apptest.Start(t, apptest.Options{Routes: routes, Policy: "condition, 庁内, zone=chonai\nallow, *, class:2, read|write, 庁内\n"})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")

	for _, c := range []struct {
		host string
		want int
	}{
		{"down", 502}, {"slow", 504}, {"garbage", 502}, {"badstatus", 502}, {"splitheader", 502}, {"closed", 502},
	} {
		t.Run(c.host, func(t *testing.T) {
			start := time.Now()
			r := w.Raw(raw("GET", "/x", c.host+".gw.example.lg.jp", cookie))
			if r.Status != c.want {
				t.Fatalf("status %d, want %d: %.200s", r.Status, c.want, r.Body)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			id := rid(t, r)
			if !strings.Contains(r.Body, id) {
				t.Errorf("page does not name the request id %s", id)
			}
			for _, leak := range []string{"127.0.0.1", "dial tcp", "connection refused", "malformed", "HELLO", "EOF", "goroutine"} {
				if strings.Contains(r.Body, leak) {
					t.Errorf("page leaks %q", leak)
				}
			}
			if !strings.Contains(r.Body, "リクエスト") && !strings.Contains(r.Body, "システム") && !strings.Contains(r.Body, "応答") {
				t.Logf("page (check it is Japanese first): %.300s", r.Body)
			}
			var got *audit.Record
			for _, rec := range mustRecords(t, w, id) {
				if rec.Status != 0 {
					got = rec
				}
			}
			if got == nil || got.Status != c.want {
				t.Errorf("audit outcome %+v, want status %d", got, c.want)
			}
		})
	}
}

// TestUpstreamExtraResponse: an upstream that answers one request with two
// responses — the second in the same write, or arriving later while the
// connection idles in the gateway's pool — must not have the extra one
// served as the answer to the next request (another user's, on a reused
// upstream connection). The gateway drops such a connection instead.
//
// An extra response that arrives only after the gateway has written the
// next request on that connection cannot be told from its answer, by
// sekisho or by http.Transport (HTTP/1.1 has no request ids); so each
// next request here waits until every extra response has been written.
func TestUpstreamExtraResponse(t *testing.T) {
	resp := func(body string) string {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
	// smuggled counts the extra responses the upstreams have written.
	var smuggled atomic.Int32
	serve := func(late bool) net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		t.Cleanup(func() { ln.Close(); wg.Wait() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					br := bufio.NewReader(c)
					for n := 0; ; n++ {
						c.SetDeadline(time.Now().Add(10 * time.Second))
						req, err := http.ReadRequest(br)
						if err != nil {
							return
						}
						io.Copy(io.Discard, req.Body)
						switch {
						case n > 0:
							io.WriteString(c, resp("fresh"))
						case late:
							io.WriteString(c, resp("first"))
							time.Sleep(100 * time.Millisecond)
							io.WriteString(c, resp("SMUGGLED"))
							smuggled.Add(1)
						default:
							io.WriteString(c, resp("first")+resp("SMUGGLED"))
							smuggled.Add(1)
						}
					}
				}()
			}
		}()
		return ln
	}
	extra, late := serve(false), serve(true)
	routes := fmt.Sprintf("  - {name: extra, host: extra.gw.example.lg.jp, upstream: \"http://%s\", segment: lgwan, class: \"2\"}\n", extra.Addr()) +
		fmt.Sprintf("  - {name: late, host: late.gw.example.lg.jp, upstream: \"http://%s\", segment: lgwan, class: \"2\"}\n", late.Addr())
	w := apptest.Start(t, apptest.Options{Routes: routes, Policy: "condition, 庁内, zone=chonai\nallow, *, class:2, read|write, 庁内\n"})
	suzuki := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	tanaka := w.Login("tanaka", apptest.UV, time.Minute, "", "")
	firsts := int32(0) // "first" answers seen: each has an extra response
	waitSmuggled := func(t *testing.T) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for smuggled.Load() < firsts {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d extra responses written", smuggled.Load(), firsts)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // and read into the gateway's socket
	}
	for _, host := range []string{"extra", "late"} {
		t.Run(host, func(t *testing.T) {
			r := w.Raw(raw("GET", "/a", host+".gw.example.lg.jp", suzuki))
			if r.Status != 200 || r.Body != "first" {
				t.Fatalf("first request: %d %q", r.Status, r.Body)
			}
			firsts++
			for i := 0; i < 3; i++ {
				waitSmuggled(t)
				r := w.Raw(raw("GET", "/b", host+".gw.example.lg.jp", tanaka))
				// "first" on a new upstream connection, "fresh" on a reused
				// one that was clean; never the extra response.
				if r.Status != 200 || (r.Body != "first" && r.Body != "fresh") {
					t.Fatalf("next request %d got %d %q, want the upstream's own answer", i, r.Status, r.Body)
				}
				if r.Body == "first" {
					firsts++
				}
			}
		})
	}
}
