package monitor

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/config"
)

// regression is a record that raises counter_regression (critical) for user.
func regression(user string) *audit.Record {
	return &audit.Record{Time: workday, Event: audit.EventAuthn, Action: "counter_regression", User: user,
		IP: "10.200.0.9", RequestID: "req-" + user, Decision: audit.DecisionDeny, Enforced: true}
}

func TestWebhookSignedAndRetried(t *testing.T) {
	const secret = "s3cret-for-tests"
	t.Setenv("SEKISHO_TEST_WEBHOOK_SECRET", secret)
	var mu sync.Mutex
	attempts := 0
	bodies := make(chan []byte, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		attempts++
		n := attempts
		mu.Unlock()
		if n == 1 {
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		}
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
		}
		got := r.Header.Get(SignatureHeader)
		if !hmac.Equal([]byte(got), []byte(Sign([]byte(secret), body))) || !strings.HasPrefix(got, "sha256=") {
			t.Errorf("signature %q does not verify", got)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		bodies <- body
	}))
	defer srv.Close()

	cfg := config.Monitor{Backoff: 10 * time.Millisecond, Channels: []config.MonitorChannel{
		{Type: "webhook", URL: srv.URL, SecretEnv: "SEKISHO_TEST_WEBHOOK_SECRET"},
	}}
	h := start(t, cfg, workday)
	h.feed(regression("abe"))
	select {
	case body := <-bodies:
		var a Alert
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("body is not an alert: %v\n%s", err, body)
		}
		if a.Rule != config.RuleCounterRegression || a.Subject != "abe" || a.Severity != "critical" || a.Evidence[0] != "req-abe" || !strings.Contains(a.Summary, "署名カウンタ") {
			t.Errorf("alert = %+v", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("webhook never received the alert")
	}
	mu.Lock()
	n := attempts
	mu.Unlock()
	if n < 2 {
		t.Errorf("attempts = %d, want a retry after the 500", n)
	}
	ok := map[string]string{"channel": "webhook", "result": "ok"}
	for deadline := time.Now().Add(5 * time.Second); counterValue(t, h.reg, "sekisho_monitor_notifications_total", ok) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if v := counterValue(t, h.reg, "sekisho_monitor_notifications_total", ok); v != 1 {
		t.Errorf("notifications ok = %v, want 1", v)
	}
	if v := counterValue(t, h.reg, "sekisho_monitor_notifications_total", map[string]string{"channel": "webhook", "result": "error"}); v < 1 {
		t.Errorf("notifications error = %v, want at least 1", v)
	}
}

func TestWebhookGivesUpAndFiltersSeverity(t *testing.T) {
	t.Setenv("SEKISHO_TEST_WEBHOOK_SECRET", "x")
	var mu sync.Mutex
	paths := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths[r.URL.Path]++
		mu.Unlock()
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	cfg := config.Monitor{Backoff: time.Millisecond, Retries: 2, Channels: []config.MonitorChannel{
		{Type: "webhook", URL: srv.URL + "/crit", SecretEnv: "SEKISHO_TEST_WEBHOOK_SECRET", MinSeverity: "critical"},
	}}
	h := start(t, cfg, workday)
	// A low alert (new_zone is low; off_hours medium) is not sent to a
	// critical-only channel; the critical one is tried 1+2 times.
	h.feed(access(jst(2026, 11, 28, 23, 0), "u1", "PC-1", "10.1.0.1", "chonai", "juki", "3A", "/", "allow"))
	h.feed(regression("abe"))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if counterValue(t, h.reg, "sekisho_monitor_notifications_total", map[string]string{"result": "given_up"}) == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if paths["/crit"] != 3 || len(paths) != 1 {
		t.Errorf("requests = %v, want 3 attempts of the critical alert only", paths)
	}
}

// testCert makes a self-signed certificate for 127.0.0.1 and writes its
// PEM to a file, returned as the CA to trust.
func testCert(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, ca
}

// mailMsg is what the test SMTP server received.
type mailMsg struct {
	from, to string
	tls      bool
	data     []byte
}

// smtpServer accepts one connection and speaks enough SMTP (RFC 5321) to
// take one message, with STARTTLS when cert is given.
func smtpServer(t *testing.T, cert *tls.Certificate) (string, <-chan mailMsg) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan mailMsg, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		var msg mailMsg
		tp := textproto.NewConn(conn)
		reply := func(s string) { _ = tp.PrintfLine("%s", s) }
		reply("220 relay.test ESMTP")
		for {
			line, err := tp.ReadLine()
			if err != nil {
				return
			}
			cmd := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
			switch {
			case cmd == "EHLO" || cmd == "HELO":
				if cert != nil && !msg.tls {
					reply("250-relay.test")
					reply("250 STARTTLS")
				} else {
					reply("250 relay.test")
				}
			case cmd == "STARTTLS" && cert != nil:
				reply("220 go ahead")
				tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{*cert}})
				if err := tc.Handshake(); err != nil {
					t.Errorf("TLS handshake: %v", err)
					return
				}
				msg.tls = true
				tp = textproto.NewConn(tc)
			case cmd == "MAIL":
				msg.from = line
				reply("250 ok")
			case cmd == "RCPT":
				msg.to = line
				reply("250 ok")
			case cmd == "DATA":
				reply("354 end with .")
				msg.data, err = tp.ReadDotBytes()
				if err != nil {
					return
				}
				reply("250 queued")
			case cmd == "QUIT":
				reply("221 bye")
				out <- msg
				return
			default:
				reply("502 not implemented")
			}
		}
	}()
	return ln.Addr().String(), out
}

func TestEmailWithStartTLS(t *testing.T) {
	cert, ca := testCert(t)
	addr, got := smtpServer(t, &cert)
	cfg := config.Monitor{Channels: []config.MonitorChannel{{
		Type: "email", Address: addr, From: "関所 <sekisho@example.lg.jp>", To: []string{"csirt@example.lg.jp"},
		StartTLS: true, CA: ca,
	}}}
	h := start(t, cfg, workday)
	h.feed(regression("abe"))
	var msg mailMsg
	select {
	case msg = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("SMTP server received no message")
	}
	if !msg.tls {
		t.Error("the message was sent without STARTTLS")
	}
	if msg.from != "MAIL FROM:<sekisho@example.lg.jp>" || msg.to != "RCPT TO:<csirt@example.lg.jp>" {
		t.Errorf("envelope %q %q", msg.from, msg.to)
	}
	head, _, _ := strings.Cut(string(msg.data), "\n\n")
	for _, line := range strings.Split(head, "\n") {
		if strings.HasPrefix(line, "Subject:") || strings.HasPrefix(line, " =?") {
			if len(line) > 78 {
				t.Errorf("subject line of %d characters is not folded: %q", len(line), line)
			}
		}
	}
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader(string(msg.data))))
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("headers: %v", err)
	}
	raw := hdr.Get("Subject")
	if !strings.HasPrefix(raw, "=?utf-8?q?") {
		t.Errorf("Subject %q is not RFC 2047 Q-encoded", raw)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(subject, "[sekisho 緊急] counter_regression: 利用者 abe") {
		t.Errorf("decoded Subject = %q", subject)
	}
	from, _ := new(mime.WordDecoder).DecodeHeader(hdr.Get("From"))
	if from != "関所 <sekisho@example.lg.jp>" {
		t.Errorf("From = %q", from)
	}
	if hdr.Get("Content-Type") != "text/plain; charset=utf-8" || hdr.Get("Content-Transfer-Encoding") != "base64" || hdr.Get("X-Sekisho-Alert") == "" {
		t.Errorf("headers %v", hdr)
	}
	rest, _ := io.ReadAll(tp.R)
	body, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(rest), "\r\n", ""))
	if err != nil {
		t.Fatalf("body is not base64: %v", err)
	}
	for _, want := range []string{"署名カウンタ", "signature counter", "req-abe", "重要度 (severity): critical"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}

// readFrame reads one octet-counted syslog frame.
func readFrame(r *bufio.Reader) (string, error) {
	n, err := r.ReadString(' ')
	if err != nil {
		return "", err
	}
	size, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil {
		return "", err
	}
	buf := make([]byte, size)
	_, err = io.ReadFull(r, buf)
	return string(buf), err
}

func TestSyslogOverTCPAndTLS(t *testing.T) {
	cert, ca := testCert(t)
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"tcp", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var ln net.Listener
			var err error
			if tc.tls {
				ln, err = tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
			} else {
				ln, err = net.Listen("tcp", "127.0.0.1:0")
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			frames := make(chan string, 4)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					f, err := readFrame(r)
					if err != nil {
						return
					}
					frames <- f
				}
			}()
			ch := config.MonitorChannel{Type: "syslog", Address: "tcp://" + ln.Addr().String(), MinSeverity: "low"}
			if tc.tls {
				ch.Address, ch.CA = "tls://"+ln.Addr().String(), ca
			}
			h := start(t, config.Monitor{Channels: []config.MonitorChannel{ch}}, workday, WithHostname("gw1"))
			h.feed(regression("abe"))
			h.m.ReportHealth("audit", io.ErrShortWrite)
			h.flush()
			for i, want := range []struct{ pri, rule, subject string }{{"<82>1 ", "counter_regression", "abe"}, {"<82>1 ", "audit_failure", "audit"}} {
				var f string
				select {
				case f = <-frames:
				case <-time.After(10 * time.Second):
					t.Fatalf("frame %d never arrived", i)
				}
				if !strings.HasPrefix(f, want.pri) || !strings.Contains(f, " gw1 sekisho - "+want.rule+" [sekisho@32473 ") ||
					!strings.Contains(f, `subject="`+want.subject+`"`) {
					t.Errorf("frame %d = %q", i, f)
				}
				msg := f[strings.Index(f, "] ")+2:]
				var a Alert
				if err := json.Unmarshal([]byte(msg), &a); err != nil || a.Rule != want.rule {
					t.Errorf("frame %d MSG is not the alert JSON: %v %q", i, err, msg)
				}
			}
		})
	}
}

func TestSyslogFormatEscapes(t *testing.T) {
	a := &Alert{ID: "x", Rule: "r", Severity: "low", Subject: `a"b]c\d`, SubjectKind: "user", Count: 1}
	got := string(formatSyslog(4, "", a, workday))
	if !strings.HasPrefix(got, "<37>1 2026-11-24T01:00:00.000000Z - sekisho - r ") {
		t.Errorf("header %q", got)
	}
	if !strings.Contains(got, `subject="a\"b\]c\\d"`) {
		t.Errorf("PARAM-VALUE not escaped: %q", got)
	}
}

func TestNewRefusesMissingSecrets(t *testing.T) {
	t.Setenv("SEKISHO_TEST_EMPTY", "")
	for _, c := range []config.MonitorChannel{
		{Type: "webhook", URL: "https://hooks.example.lg.jp/", SecretEnv: "SEKISHO_TEST_EMPTY"},
		{Type: "email", Address: "mail:25", From: "a@b.jp", To: []string{"c@d.jp"}, Username: "u", PasswordEnv: "SEKISHO_TEST_EMPTY"},
		{Type: "syslog", Address: "tls://siem:6514", CA: filepath.Join(t.TempDir(), "missing.pem")},
	} {
		if _, err := New(config.Monitor{Channels: []config.MonitorChannel{c}}); err == nil {
			t.Errorf("New accepted %s channel %+v", c.Type, c)
		}
	}
}

func TestEmailPlain(t *testing.T) {
	addr, got := smtpServer(t, nil)
	cfg := config.Monitor{Channels: []config.MonitorChannel{{Type: "email", Address: addr, From: "sekisho@example.lg.jp", To: []string{"a@example.lg.jp", "b@example.lg.jp"}}}}
	h := start(t, cfg, workday)
	h.feed(regression("abe"))
	select {
	case msg := <-got:
		if msg.tls || msg.to != "RCPT TO:<b@example.lg.jp>" || !strings.Contains(string(msg.data), "To: <a@example.lg.jp>, <b@example.lg.jp>\n") {
			t.Errorf("message tls=%v to=%q\n%s", msg.tls, msg.to, msg.data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SMTP server received no message")
	}
}

func TestChannelRateLimit(t *testing.T) {
	t.Setenv("SEKISHO_TEST_WEBHOOK_SECRET", "x")
	var mu sync.Mutex
	subjects := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a Alert
		_ = json.NewDecoder(r.Body).Decode(&a)
		mu.Lock()
		subjects[a.Subject] = true
		mu.Unlock()
	}))
	defer srv.Close()
	cfg := config.Monitor{Channels: []config.MonitorChannel{{Type: "webhook", URL: srv.URL, SecretEnv: "SEKISHO_TEST_WEBHOOK_SECRET", MaxPerMinute: 2}}}
	h := start(t, cfg, workday)
	for i := range 5 {
		h.feed(regression(fmt.Sprintf("user%d", i)))
	}
	limited := map[string]string{"channel": "webhook", "result": "rate_limited"}
	if v := counterValue(t, h.reg, "sekisho_monitor_notifications_total", limited); v != 3 {
		t.Errorf("rate_limited = %v, want 3 of 5", v)
	}
	ok := map[string]string{"channel": "webhook", "result": "ok"}
	for deadline := time.Now().Add(5 * time.Second); counterValue(t, h.reg, "sekisho_monitor_notifications_total", ok) < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(subjects) != 2 || !subjects["user0"] || !subjects["user1"] {
		t.Errorf("delivered %v, want the first two", subjects)
	}
	if n := len(h.alerts(config.RuleCounterRegression)); n != 5 {
		t.Errorf("audit holds %d alerts, want all 5", n)
	}
}
