package audit

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/config"
)

// syslogServer is a local RFC 6587 octet-counting receiver.
type syslogServer struct {
	ln    net.Listener
	mu    sync.Mutex
	msgs  []string
	conns []net.Conn
}

// down closes the listener and every connection, like a receiver that dies.
func (s *syslogServer) down() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

func startSyslog(t *testing.T, ln net.Listener) *syslogServer {
	t.Helper()
	s := &syslogServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *syslogServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		lenStr, err := br.ReadString(' ')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(lenStr))
		if err != nil {
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(br, buf); err != nil {
			return
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, string(buf))
		s.mu.Unlock()
	}
}

// requestIDs returns the request ids received, in order, de-duplicated
// (delivery is at least once).
func (s *syslogServer) requestIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, m := range s.msgs {
		i := strings.Index(m, `"request_id":"`)
		if i < 0 {
			continue
		}
		id := m[i+14:]
		id = id[:strings.IndexByte(id, '"')]
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSyslogSinkCatchesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv := startSyslog(t, ln)
	cfg := testConfig(t)
	cfg.Sinks = []config.Sink{{Type: "syslog", Address: "tcp://" + addr}}
	tr, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	appendIDs := func(from, to int) {
		for i := from; i < to; i++ {
			r := accessRecord(i)
			r.RequestID = fmt.Sprintf("s%d", i)
			if err := tr.AppendDurable(t.Context(), r); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendIDs(0, 20)
	waitFor(t, "20 records at the syslog server", func() bool { return len(srv.requestIDs()) == 20 })

	// Message shape: RFC 5424 header, then the stored JSON line.
	frame := regexp.MustCompile(`^<(110|108)>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ sekisho - (access|system|checkpoint) - \x{FEFF}\{"seq":\d+,`)
	srv.mu.Lock()
	for _, m := range srv.msgs {
		if !frame.MatchString(m) {
			t.Errorf("not an RFC 5424 message as expected: %q", m)
		}
	}
	srv.mu.Unlock()

	// The receiver goes down; the trail does not notice.
	srv.down()
	start := time.Now()
	appendIDs(20, 40)
	if time.Since(start) > 5*time.Second {
		t.Fatal("appends were slowed by the sink outage")
	}
	if err := tr.Healthy(); err != nil {
		t.Fatal(err)
	}
	// It comes back on the same address and gets what it missed.
	// The port was free a moment ago; another process may take it in
	// between, so retry briefly. With CI=true that is a failure, not a skip.
	var ln2 net.Listener
	for end := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ln2, err = net.Listen("tcp", addr); err == nil {
			break
		}
		if time.Now().After(end) {
			if os.Getenv("CI") == "true" {
				t.Fatalf("cannot listen on %s again: %v", addr, err)
			}
			t.Skipf("cannot listen on %s again: %v", addr, err)
		}
	}
	srv2 := startSyslog(t, ln2)
	waitFor(t, "catch-up after the outage", func() bool {
		ids := srv2.requestIDs()
		return len(ids) > 0 && ids[len(ids)-1] == "s39"
	})
	ids := srv2.requestIDs()
	for i := 20; i < 40; i++ {
		if !strings.Contains(" "+strings.Join(ids, " ")+" ", fmt.Sprintf(" s%d ", i)) {
			t.Fatalf("s%d missing after catch-up: %v", i, ids)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	// The position is kept (at least resendWindow behind what was sent).
	b, err := os.ReadFile(tr.sinks[0].statePath)
	var st sinkState
	if err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("sink state file: %s %v", b, err)
	}
}

func TestSyslogSinkTLS(t *testing.T) {
	cert, caPEM := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := startSyslog(t, ln)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, caPEM, 0o600)
	cfg := testConfig(t)
	cfg.Sinks = []config.Sink{{Type: "syslog", Address: "tls://" + ln.Addr().String(), CA: ca}}
	tr, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.AppendDurable(t.Context(), accessRecord(7)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a record over TLS", func() bool {
		ids := srv.requestIDs()
		return len(ids) == 1 && ids[0] == "req-7"
	})
}

func TestSinkConfigErrors(t *testing.T) {
	for _, sc := range []config.Sink{
		{Type: "kafka"},
		{Type: "syslog", Address: "udp://127.0.0.1:514"},
		{Type: "syslog", Address: "nonsense"},
	} {
		cfg := testConfig(t)
		cfg.Sinks = []config.Sink{sc}
		if tr, err := Open(cfg); err == nil {
			tr.Close()
			t.Errorf("sink %+v accepted", sc)
		}
	}
}

func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "syslog.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert, certPEM
}
