package monitor

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sekisho/sekisho/config"
)

// notifier sends one alert to one place.
type notifier interface {
	name() string
	send(ctx context.Context, a *Alert) error
	close()
}

var (
	_ notifier = (*webhook)(nil)
	_ notifier = (*syslogger)(nil)
	_ notifier = (*mailer)(nil)
)

// channel is a notifier with its own bounded queue, so a slow SIEM never
// delays e-mail and none of them delays the rules.
type channel struct {
	n     notifier
	min   int // least severe rank sent
	q     chan Alert
	limit *rate.Limiter
}

// defaultPerMinute bounds the alerts one channel sends.
const defaultPerMinute = 30

func newNotifier(c config.MonitorChannel, o options) (notifier, error) {
	var roots *x509.CertPool
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("reading CA: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in CA file %s", c.CA)
		}
	}
	switch c.Type {
	case "webhook":
		secret := os.Getenv(c.SecretEnv)
		if secret == "" {
			return nil, fmt.Errorf("environment variable %s (secret_env) is empty", c.SecretEnv)
		}
		return &webhook{url: c.URL, secret: []byte(secret), client: &http.Client{Timeout: 10 * time.Second}}, nil
	case "syslog":
		u, err := url.Parse(c.Address)
		if err != nil || (u.Scheme != "tcp" && u.Scheme != "tls") || u.Host == "" {
			return nil, fmt.Errorf("address %q: want tcp://host:port or tls://host:port", c.Address)
		}
		s := &syslogger{addr: u.Host, facility: c.Facility, hostname: o.hostname}
		if s.facility == 0 {
			s.facility = 10 // authpriv
		}
		if s.hostname == "" {
			s.hostname, _ = os.Hostname()
		}
		if u.Scheme == "tls" {
			s.tls = &tls.Config{ServerName: u.Hostname(), RootCAs: roots, MinVersion: tls.VersionTLS12}
		}
		return s, nil
	case "email":
		host, _, err := net.SplitHostPort(c.Address)
		if err != nil {
			return nil, fmt.Errorf("SMTP address %q: %w", c.Address, err)
		}
		e := &mailer{addr: c.Address, host: host, startTLS: c.StartTLS, username: c.Username}
		from, err := mail.ParseAddress(c.From)
		if err != nil {
			return nil, fmt.Errorf("from %q: %w", c.From, err)
		}
		e.from, e.fromHeader = from.Address, from.String()
		for _, t := range c.To {
			to, err := mail.ParseAddress(t)
			if err != nil {
				return nil, fmt.Errorf("to %q: %w", t, err)
			}
			e.to = append(e.to, to.Address)
			e.toHeader = append(e.toHeader, to.String())
		}
		if c.StartTLS {
			e.tls = &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12}
		}
		if c.Username != "" {
			e.password = os.Getenv(c.PasswordEnv)
			if e.password == "" {
				return nil, fmt.Errorf("environment variable %s (password_env) is empty", c.PasswordEnv)
			}
		}
		return e, nil
	}
	return nil, fmt.Errorf("unknown channel type %q", c.Type)
}

// deliver sends the channel's alerts, retrying each with doubling backoff.
func (m *Monitor) deliver(ctx context.Context, c *channel) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-c.q:
			wait := m.set.backoff
			for attempt := 0; ; attempt++ {
				err := c.n.send(ctx, &a)
				if err == nil {
					m.met.notifications.WithLabelValues(c.n.name(), "ok").Inc()
					break
				}
				m.met.notifications.WithLabelValues(c.n.name(), "error").Inc()
				if attempt >= m.set.retries || ctx.Err() != nil {
					m.met.notifications.WithLabelValues(c.n.name(), "given_up").Inc()
					m.log.Error("monitor: notification given up", "channel", c.n.name(), "id", a.ID, "attempts", attempt+1, "err", err)
					break
				}
				m.log.Warn("monitor: notification failed; retrying", "channel", c.n.name(), "id", a.ID, "in", wait, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
				wait *= 2
			}
		}
	}
}

// A webhook POSTs the alert as JSON with X-Sekisho-Signature:
// sha256=<hex HMAC-SHA256 of the body under the shared secret>.
type webhook struct {
	url    string
	secret []byte
	client *http.Client
}

// SignatureHeader carries the webhook body's HMAC.
const SignatureHeader = "X-Sekisho-Signature"

// Sign returns the X-Sekisho-Signature value of body under secret, for
// receivers that verify it (compare with hmac.Equal).
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (w *webhook) name() string { return "webhook" }
func (w *webhook) close()       {}

func (w *webhook) send(ctx context.Context, a *Alert) error {
	body, err := json.Marshal(alertDetail{Alert: a})
	if err != nil {
		return fmt.Errorf("encoding alert: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sekisho-monitor")
	req.Header.Set(SignatureHeader, Sign(w.secret, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting alert to webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// A syslogger sends RFC 5424 messages over TCP or TLS with octet-counting
// framing (RFC 6587 §3.4.1), keeping the connection between alerts.
type syslogger struct {
	addr     string
	tls      *tls.Config
	facility int
	hostname string

	mu   sync.Mutex
	conn net.Conn
}

func (s *syslogger) name() string { return "syslog" }

func (s *syslogger) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// syslogSeverity maps alert severities to RFC 5424 severities.
var syslogSeverity = map[string]int{"critical": 2, "high": 3, "medium": 4, "low": 5}

// sdEscape escapes an RFC 5424 PARAM-VALUE.
var sdEscape = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`)

// formatSyslog builds one RFC 5424 message (without framing).
func formatSyslog(facility int, hostname string, a *Alert, now time.Time) []byte {
	body, _ := json.Marshal(alertDetail{Alert: a})
	sev, ok := syslogSeverity[a.Severity]
	if !ok {
		sev = 4
	}
	host := hostname
	if host == "" {
		host = "-"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>1 %s %s sekisho - %s [sekisho@32473 id=\"%s\" rule=\"%s\" severity=\"%s\" subject=\"%s\" kind=\"%s\" count=\"%d\"] ",
		facility*8+sev, now.UTC().Format("2006-01-02T15:04:05.000000Z"), host, a.Rule,
		sdEscape.Replace(a.ID), sdEscape.Replace(a.Rule), sdEscape.Replace(a.Severity),
		sdEscape.Replace(a.Subject), sdEscape.Replace(a.SubjectKind), a.Count)
	b.Write(body)
	return b.Bytes()
}

func (s *syslogger) send(ctx context.Context, a *Alert) error {
	msg := formatSyslog(s.facility, s.hostname, a, time.Now())
	frame := append([]byte(strconv.Itoa(len(msg))+" "), msg...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		var err error
		if s.tls != nil {
			s.conn, err = (&tls.Dialer{NetDialer: d, Config: s.tls}).DialContext(ctx, "tcp", s.addr)
		} else {
			s.conn, err = d.DialContext(ctx, "tcp", s.addr)
		}
		if err != nil {
			s.conn = nil
			return fmt.Errorf("connecting to syslog %s: %w", s.addr, err)
		}
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.conn.Write(frame); err != nil {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("sending to syslog %s: %w", s.addr, err)
	}
	return nil
}

// A mailer sends the alert as a plain-text e-mail through an SMTP relay.
type mailer struct {
	addr, host       string
	from, fromHeader string
	to, toHeader     []string
	startTLS         bool
	tls              *tls.Config
	username         string
	password         string
}

func (e *mailer) name() string { return "email" }
func (e *mailer) close()       {}

var severityJA = map[string]string{"critical": "緊急", "high": "重要", "medium": "警告", "low": "注意"}

// composeMail builds the message: headers (the Japanese subject encoded
// per RFC 2047) and a base64 UTF-8 body.
func composeMail(from string, to []string, a *Alert, now time.Time) []byte {
	subject := fmt.Sprintf("[sekisho %s] %s: %s", severityJA[a.Severity], a.Rule, a.Summary)
	if r := []rune(subject); len(r) > 120 {
		subject = string(r[:120]) + "…"
	}
	var body strings.Builder
	fmt.Fprintf(&body, "%s\n\n%s\n\n", a.Summary, a.SummaryEN)
	fmt.Fprintf(&body, "ID: %s\nルール (rule): %s\n重要度 (severity): %s\n対象 (subject): %s %s\n", a.ID, a.Rule, a.Severity, a.SubjectKind, a.Subject)
	fmt.Fprintf(&body, "最初 (first): %s\n最後 (last): %s\n回数 (count): %d\n", a.First.UTC().Format(time.RFC3339), a.Last.UTC().Format(time.RFC3339), a.Count)
	if len(a.Evidence) > 0 {
		fmt.Fprintf(&body, "証跡 (evidence, request ids): %s\n", strings.Join(a.Evidence, ", "))
	}
	body.WriteString("\n対応手順は docs/monitoring.md を参照してください (see docs/monitoring.md for what to do).\n")

	var id [12]byte
	_, _ = rand.Read(id[:])
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(to, ", "))
	// Encoded words are folded one per line (RFC 5322 §2.2.3 keeps lines
	// under 78 characters; RFC 2047 §2 allows 75 per word).
	fmt.Fprintf(&b, "Subject:\r\n %s\r\n", strings.ReplaceAll(mime.QEncoding.Encode("utf-8", subject), "?= =?", "?=\r\n =?"))
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@sekisho>\r\n", hex.EncodeToString(id[:]))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n")
	fmt.Fprintf(&b, "X-Sekisho-Alert: %s\r\n\r\n", a.ID)
	enc := base64.StdEncoding.EncodeToString([]byte(body.String()))
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.Bytes()
}

func (e *mailer) send(ctx context.Context, a *Alert) error {
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return fmt.Errorf("connecting to SMTP %s: %w", e.addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("greeting SMTP %s: %w", e.addr, err)
	}
	defer c.Close()
	if e.startTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("SMTP server does not offer STARTTLS, which is configured as required")
		}
		if err := c.StartTLS(e.tls); err != nil {
			return fmt.Errorf("SMTP STARTTLS: %w", err)
		}
	}
	if e.username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.username, e.password, e.host)); err != nil {
			return fmt.Errorf("SMTP AUTH: %w", err)
		}
	}
	if err := c.Mail(e.from); err != nil {
		return fmt.Errorf("SMTP MAIL FROM: %w", err)
	}
	for _, to := range e.to {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("SMTP RCPT TO %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if _, err := w.Write(composeMail(e.fromHeader, e.toHeader, a, time.Now())); err != nil {
		return fmt.Errorf("writing the e-mail: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("ending the e-mail: %w", err)
	}
	return c.Quit()
}
