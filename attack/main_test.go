package attack

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/internal/apptest"
)

func TestMain(m *testing.M) {
	// No goroutine may outlive the tests: every world, client, upstream
	// and child process is shut down by the test that started it.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if bin.dir != "" {
			os.RemoveAll(bin.dir)
		}
	}))
}

const (
	zaimu  = "zaimu.gw.example.lg.jp"
	juki   = "juki.gw.example.lg.jp"
	bunsho = "bunsho.gw.example.lg.jp"
)

// rid is the request id sekisho gave a response.
func rid(t *testing.T, r apptest.Response) string {
	t.Helper()
	id := r.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatalf("response %d has no X-Request-Id", r.Status)
	}
	return id
}

// mustRecords fails unless the trail holds a record of the request, and
// returns its records.
func mustRecords(t *testing.T, w *apptest.World, id string) []*audit.Record {
	t.Helper()
	recs := w.Records(id)
	if len(recs) == 0 {
		t.Fatalf("no audit record for request %s", id)
	}
	return recs
}

// decisionRecord returns the first access/admin record of a request.
func decisionRecord(t *testing.T, w *apptest.World, id string) *audit.Record {
	t.Helper()
	for _, r := range mustRecords(t, w, id) {
		if r.Event == audit.EventAccess || r.Event == audit.EventAdmin {
			return r
		}
	}
	t.Fatalf("request %s has no access record", id)
	return nil
}

// seenByID returns what the upstream received for a request id.
func seenByID(w *apptest.World, id string) (apptest.Seen, bool) {
	for _, s := range w.Seen() {
		if s.Header.Get("X-Request-Id") == id {
			return s, true
		}
	}
	return apptest.Seen{}, false
}

// seenPath reports whether any upstream request had this path.
func seenPath(w *apptest.World, pred func(p string) bool) bool {
	for _, s := range w.Seen() {
		if pred(s.Path) {
			return true
		}
	}
	return false
}

// raw builds a plain-listener request with a session cookie.
func raw(method, target, host, cookie string, extra ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n")
	if cookie != "" {
		b.WriteString("Cookie: __Host-sekisho=" + cookie + "\r\n")
	}
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Accept: text/html\r\nConnection: close\r\n\r\n")
	return b.String()
}

// rawStatus sends raw bytes and returns the status line's code, or 0 when
// the server closed the connection without an answer.
func rawStatus(t *testing.T, addr, req string) int {
	t.Helper()
	return rawResponse(t, addr, req).Status
}

// rawResponse sends raw bytes and reads one response; Status is 0 when the
// server closed the connection without an answer.
func rawResponse(t *testing.T, addr, req string) apptest.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		return apptest.Response{}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return apptest.Response{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apptest.Response{Status: resp.StatusCode, Body: string(b), Header: resp.Header}
}

// rawResponseCount sends raw bytes and counts the responses until the
// server closes the connection; it fails the test if the server keeps it
// open (a read times out).
func rawResponseCount(t *testing.T, addr, req string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	n := 0
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("after %d responses the connection is still open", n)
			}
			return n
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		n++
	}
}

// client is a TLS client of the world that never follows redirects. Its
// connections are closed when the test ends.
func client(t *testing.T, w *apptest.World, host string, cert *tls.Certificate) *http.Client {
	t.Helper()
	tc := &tls.Config{RootCAs: w.CAPool, ServerName: host}
	if cert != nil {
		c := *cert
		// Always send the certificate, even when its issuer is not one the
		// server asked for: the gateway, not the client, must refuse it.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	tr := &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// do sends req through c and reads the whole response.
func do(t *testing.T, c *http.Client, req *http.Request) apptest.Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apptest.Response{Status: resp.StatusCode, Body: string(b), Header: resp.Header}
}
