package attack

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/internal/apptest"
)

// rawTLS writes raw request bytes on a TLS connection to the HTTPS
// listener (HTTP/1.1 by ALPN, with a device certificate if given) and
// reads one response.
func rawTLS(t *testing.T, w *apptest.World, req string, cert *tls.Certificate) apptest.Response {
	t.Helper()
	tc := &tls.Config{RootCAs: w.CAPool, ServerName: zaimu, NextProtos: []string{"http/1.1"}}
	if cert != nil {
		c := *cert
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", w.HTTPS, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apptest.Response{Status: resp.StatusCode, Body: string(b), Header: resp.Header}
}

// mustRefusalRecord fails unless the response carries a request id whose
// audit record is a net/http refusal with this status and reason, and
// returns the record.
func mustRefusalRecord(t *testing.T, w *apptest.World, r apptest.Response, status int, reason string) *audit.Record {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (%.200q)", r.Status, status, r.Body)
	}
	recs := mustRecords(t, w, rid(t, r))
	if len(recs) != 1 {
		t.Fatalf("%d audit records for one refused request", len(recs))
	}
	rec := recs[0]
	if rec.Event != audit.EventAccess || rec.Decision != "error" || rec.Rule != "net/http" || rec.Status != status ||
		len(rec.Reasons) != 2 || rec.Reasons[0] != reason {
		t.Errorf("record: event %s decision %s rule %s status %d reasons %q; want a net/http refusal %d %s",
			rec.Event, rec.Decision, rec.Rule, rec.Status, rec.Reasons, status, reason)
	}
	if rec.IP != "127.0.0.1" || rec.Zone != "chonai" {
		t.Errorf("record source %s zone %s", rec.IP, rec.Zone)
	}
	return rec
}

// TestNetHTTPRefusalsAudited (closes gap G1): requests that net/http
// refuses before sekisho's handler runs are refused, never forwarded, and
// still answered with an X-Request-Id that names an audit record, on the
// plain listener and over TLS, where the record carries the device of the
// client certificate presented.
func TestNetHTTPRefusalsAudited(t *testing.T) {
	w := apptest.Start(t, apptest.Options{Server: "max_header_bytes: 8192"})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	ck := "Cookie: __Host-sekisho=" + cookie
	dev, fp := w.Device("PC-0300", "suzuki")
	cases := []struct {
		name, req string
		status    int
		reason    string
	}{
		{"bad escape in target", raw("GET", "/admin%zz", zaimu, cookie), 400, "malformed_request"},
		{"malformed header line", raw("GET", "/public", zaimu, cookie, "X Sekisho User: tanaka"), 400, "malformed_request"},
		{"431 oversized header", raw("GET", "/public", zaimu, cookie, "X-Big: "+strings.Repeat("a", 32<<10)), 431, "header_too_large"},
		{"duplicate Host", "GET /public HTTP/1.1\r\nHost: " + zaimu + "\r\nHost: " + juki + "\r\n" + ck + "\r\nConnection: close\r\n\r\n", 400, "malformed_request"},
		{"unsupported Transfer-Encoding", "POST /public HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501, "unsupported_transfer_encoding"},
	}
	for _, c := range cases {
		t.Run("plain/"+c.name, func(t *testing.T) {
			before := len(w.Seen())
			rec := mustRefusalRecord(t, w, w.Raw(c.req), c.status, c.reason)
			if rec.Device != "" {
				t.Errorf("device %q on the plain listener", rec.Device)
			}
			if len(w.Seen()) != before {
				t.Error("refused request reached the upstream")
			}
		})
		t.Run("tls/"+c.name, func(t *testing.T) {
			before := len(w.Seen())
			rec := mustRefusalRecord(t, w, rawTLS(t, w, c.req, &dev), c.status, c.reason)
			if rec.Device != "PC-0300" || rec.CertFP != fp {
				t.Errorf("record device %q fp %q, want the client certificate's", rec.Device, rec.CertFP)
			}
			if len(w.Seen()) != before {
				t.Error("refused request reached the upstream")
			}
		})
	}
	// The gateway still serves, and the trail with the refusals verifies.
	if r := w.Raw(raw("GET", "/public", zaimu, cookie)); r.Status != 200 {
		t.Errorf("after: %d", r.Status)
	}
	if res := w.Verify(); !res.OK() {
		t.Errorf("audit trail does not verify: %+v", res)
	}
}

// TestNetHTTPRefusalPipelined: two requests the gateway answers and a
// malformed third, pipelined on one keep-alive connection. The answered
// ones keep their single request id and their own records; only the third
// is recorded as net/http's refusal, once.
func TestNetHTTPRefusalPipelined(t *testing.T) {
	w := apptest.Start(t, apptest.Options{})
	cookie := w.Login("suzuki", apptest.UV, time.Minute, "", "")
	ck := "Cookie: __Host-sekisho=" + cookie + "\r\n"
	req := "GET /public HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "\r\n" +
		"GET /admin HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "Accept: text/html\r\n\r\n" +
		"GET /admin%zz HTTP/1.1\r\nHost: " + zaimu + "\r\n" + ck + "\r\n"
	for _, overTLS := range []bool{false, true} {
		name := "plain"
		if overTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			var conn net.Conn
			var err error
			if overTLS {
				conn, err = tls.Dial("tcp", w.HTTPS, &tls.Config{RootCAs: w.CAPool, ServerName: zaimu, NextProtos: []string{"http/1.1"}})
			} else {
				conn, err = net.Dial("tcp", w.HTTP)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, req); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			var rs []apptest.Response
			for i := 0; i < 3; i++ {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("response %d: %v", i+1, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if n := len(resp.Header.Values("X-Request-Id")); n != 1 {
					t.Fatalf("response %d (%d) has %d X-Request-Id headers", i+1, resp.StatusCode, n)
				}
				rs = append(rs, apptest.Response{Status: resp.StatusCode, Body: string(b), Header: resp.Header})
			}
			if rs[0].Status != 200 || rs[1].Status == 200 || rs[1].Status == 400 {
				t.Fatalf("statuses %d %d, want 200 and a refusal of /admin", rs[0].Status, rs[1].Status)
			}
			for i := 0; i < 2; i++ {
				for _, rec := range mustRecords(t, w, rid(t, rs[i])) {
					if rec.Rule == "net/http" {
						t.Errorf("response %d (%d) recorded as net/http's refusal", i+1, rs[i].Status)
					}
				}
			}
			mustRefusalRecord(t, w, rs[2], 400, "malformed_request")
		})
	}
}
